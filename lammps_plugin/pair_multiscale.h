/* pair_style multiscale: a machine-learned potential from a multiscale model file.

   The model file is a TorchScript archive that carries its contract in the extra
   file multiscale.json (elements, cutoff, hops, dtype, outputs); see
   docs/model_contract.md.  Each step the style marshals LAMMPS' atoms and full
   neighbour list into nodes and edges, calls the model, and scatters energies,
   forces (from dE/d edge vectors) and virials back onto local and ghost atoms.
   Only local atoms' energies count (nodes [0, n_local)): in eng_vdwl, in eatom and in
   the sum whose gradient gives forces and virials; what a model returns for ghosts is
   ignored, unless the model declares ghost_energies = "tally" (then every entry is a share
   of a local term and counts).  Atoms closer than 1e-8 Å stop the run with their IDs.
   With `device cuda` the model runs on a GPU (one per rank on a node, round robin); the
   graph is built on the CPU and copied over each step, the results copied back.
*/

#ifndef LMP_PAIR_MULTISCALE_H
#define LMP_PAIR_MULTISCALE_H

#include "pair.h"

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <torch/types.h>

namespace torch::jit {
struct Module;
}
namespace torch::inductor {
class AOTIModelPackageLoader;
}

namespace LAMMPS_NS {

class PairMultiscale : public Pair {
 public:
  PairMultiscale(class LAMMPS *);
  ~PairMultiscale() override;

  void settings(int, char **) override;
  void coeff(int, char **) override;
  void init_style() override;
  double init_one(int, int) override;
  void compute(int, int) override;

 private:
  // the model and its contract
  std::unique_ptr<torch::jit::Module> module;   // a TorchScript model file (.pt), or
  std::unique_ptr<torch::inductor::AOTIModelPackageLoader> package;   // a compiled one (.pt2)
  bool package_virials;   // the package returns per-atom virials after the edge gradient
  std::string model_path;
  std::string model_name;
  std::vector<std::string> model_elements;
  double cutoff;          // Å
  int hops;               // message-passing depth
  bool model_virials;     // the model outputs per-atom "virials"
  bool tally_ghost_energies;   // ghost_energies = "tally": ghost entries are shares of local terms
  bool whole_system;      // one eigenproblem over every atom: one rank, non-periodic box only
  bool use_float32;       // the model runs in float32
  torch::Device device;   // where the model runs: the CPU (default) or one CUDA GPU
  std::vector<int64_t> reductions;   // widths of the model's per-system sums, one per stage
  bool model_uses_spin;   // the model reads the spin multiplicity: check it against the electrons
  double cutghost_set;    // comm cutoff this style set itself, 0 if none
  double total_charge;    // e, passed to the model
  int spin_multiplicity;  // 2S+1, passed to the model
  bool spin_given;        // `spin M` was on the pair_style line
  double energy_scale;    // eV -> the run's energy unit: 1 (metal), kcal/mol per eV (real)
  bool per_molecule;      // `charge molecule`: each molecule keeps its data-file total charge
  bool model_grouped;     // the model can take its sums per group (forward_grouped)
  bool model_inline;      // ... and inline on one domain holding every atom (forward_inline)
  int64_t nmolecules;     // the largest molecule ID; groups 0..nmolecules (0: no molecule)
  std::vector<double> molecule_totals;   // (nmolecules + 1) x [Q e, M] for charge molecule
  std::vector<int> type_map;    // atom type -> model element, -1 for NULL

  std::string resolve_model(const std::string &);
  void select_device(const std::string &);
  void load_model(const std::string &);
  std::string load_torchscript(const std::string &);   // -> the metadata text
  std::string load_package(const std::string &);
  void cast_floating(torch::ScalarType);
  void allocate();

  // the model's graph, rebuilt each step in reused buffers
  std::vector<int> node_of;            // LAMMPS atom -> node, -1 if none
  std::vector<int> atom_of;            // node -> LAMMPS atom
  std::vector<int64_t> species;        // node -> model element
  std::vector<int64_t> edge_index;     // nedges centres, then nedges neighbours
  std::vector<double> edge_vectors;    // r_j - r_i, Å
  int nlocal_nodes;                    // nodes [0, nlocal_nodes) are local atoms
  int64_t nedges;

  // one step: marshal -> call -> scatter
  struct Outputs {
    torch::Tensor energies;   // the counted nodes' energies, float64 eV
    torch::Tensor grad;       // (nedges, 3) float64 dE/d(edge vector); undefined without edges
    torch::Tensor virials;    // (n, 3, 3) float64 eV, the model's own per-atom virials, if any
    torch::Tensor charges;    // (n,) float64 e, the model's charges, if it returns them
  };
  void marshal();
  int add_node(int);
  void coincident_atoms(int, int, double);   // error->one naming the two atoms' IDs
  Outputs call();
  Outputs call_package(const torch::Tensor &, const torch::Tensor &, const torch::Tensor &);
  Outputs call_reduced(const torch::Tensor &, const torch::Tensor &, torch::Tensor &);
  torch::Tensor counted_energies(const c10::IValue &, Outputs &);
  Outputs finish(const torch::Tensor &, Outputs &);
  torch::Tensor global_sum(const torch::Tensor &);
  void check_charge_spin();
  void setup_molecules();
  void scatter_energies(const torch::Tensor &);
  void scatter_forces(const torch::Tensor &);
  void scatter_global_virial(const torch::Tensor &);
  void scatter_atom_virials(const torch::Tensor &, const torch::Tensor &);
};

}    // namespace LAMMPS_NS

#endif
