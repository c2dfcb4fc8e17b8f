/* pair_style multiscale: a machine-learned potential from a multiscale model file.

   The model file is a TorchScript archive that carries its contract in the extra
   file multiscale.json (elements, cutoff, hops, dtype, outputs); see
   docs/model_contract.md.  Each step the style marshals LAMMPS' atoms and
   neighbour list into an edge list, calls the model, and scatters energies,
   forces (dE/d edge vectors) and virials back onto local and ghost atoms.
*/

#ifndef LMP_PAIR_MULTISCALE_H
#define LMP_PAIR_MULTISCALE_H

#include "pair.h"

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace torch::jit {
struct Module;
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
  std::unique_ptr<torch::jit::Module> module;
  std::string model_path;
  std::vector<std::string> model_elements;
  double cutoff;
  int hops;
  bool model_virials;    // the model outputs per-atom "virials"
  bool use_float32;      // edge vectors and the model run in float32
  double cutghost_set;    // comm cutoff this style set itself (0 if none)

  void load_model(const std::string &path);
  void allocate();

  // per-step buffers, reused between steps
  std::vector<int> node_of;          // LAMMPS atom index -> model node, -1 if none
  std::vector<int> atom_of;          // model node -> LAMMPS atom index
  std::vector<int64_t> species;      // model node -> model element
  std::vector<int64_t> edge_index;   // centres, then neighbours
  std::vector<double> edge_vectors;  // r_j - r_i, Å

  int marshal();
  int add_node(int);
};

}    // namespace LAMMPS_NS

#endif
