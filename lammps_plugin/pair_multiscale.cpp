/* pair_style multiscale: see pair_multiscale.h and docs/model_contract.md. */

#include "pair_multiscale.h"

#include "atom.h"
#include "comm.h"
#include "domain.h"
#include "error.h"
#include "force.h"
#include "lammps_compat.h"
#include "memory.h"
#include "neigh_list.h"
#include "neighbor.h"
#include "update.h"
#include "utils.h"

#include <ATen/detail/CUDAHooksInterface.h>
#include <torch/csrc/autograd/autograd.h>
#include <torch/cuda.h>
#include <torch/csrc/inductor/aoti_package/model_package_loader.h>
#include <torch/script.h>
#include <torch/version.h>

#include <dlfcn.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>

using namespace LAMMPS_NS;

static constexpr int CONTRACT_VERSION = 2;   // reads 1 (no reductions) and 2
static const char METADATA_FILE[] = "multiscale.json";
static const char COMPILED_KEY[] = "multiscale.compiled";   // what a .pt2 was compiled for
static constexpr int COMPILED_FORMAT = 1;                    // multiscale.model.compiled.FORMAT_VERSION
// the fields of multiscale.model.contract.ModelMetadata (plus "format" and "units")
static const std::string METADATA_FIELDS[] = {
    "format", "units", "name", "elements", "cutoff", "hops", "dtype", "version", "citation",
    "description", "outputs", "uses_charge", "uses_spin", "ghost_energies", "reductions",
    "contract_version", "whole_system"};
static const std::string KNOWN_OUTPUTS[] = {"energies", "virials", "charges", "spin_charges",
                                            "attention", "orbital_energies"};
// what ase.data.chemical_symbols holds (the Python side's check), without "X"
static const std::string CHEMICAL_SYMBOLS[] = {
    "H",  "He", "Li", "Be", "B",  "C",  "N",  "O",  "F",  "Ne", "Na", "Mg", "Al", "Si", "P",
    "S",  "Cl", "Ar", "K",  "Ca", "Sc", "Ti", "V",  "Cr", "Mn", "Fe", "Co", "Ni", "Cu", "Zn",
    "Ga", "Ge", "As", "Se", "Br", "Kr", "Rb", "Sr", "Y",  "Zr", "Nb", "Mo", "Tc", "Ru", "Rh",
    "Pd", "Ag", "Cd", "In", "Sn", "Sb", "Te", "I",  "Xe", "Cs", "Ba", "La", "Ce", "Pr", "Nd",
    "Pm", "Sm", "Eu", "Gd", "Tb", "Dy", "Ho", "Er", "Tm", "Yb", "Lu", "Hf", "Ta", "W",  "Re",
    "Os", "Ir", "Pt", "Au", "Hg", "Tl", "Pb", "Bi", "Po", "At", "Rn", "Fr", "Ra", "Ac", "Th",
    "Pa", "U",  "Np", "Pu", "Am", "Cm", "Bk", "Cf", "Es", "Fm", "Md", "No", "Lr", "Rf", "Db",
    "Sg", "Bh", "Hs", "Mt", "Ds", "Rg", "Cn", "Nh", "Fl", "Mc", "Lv", "Ts", "Og"};

// Atoms closer than this (Å) are taken as coincident: no model's energy is defined there.
static constexpr double MIN_DISTANCE = 1e-8;

// A regular file this process can open for reading (LAMMPS' platform.h has one since 2022;
// std::filesystem keeps older LAMMPS building).
static bool readable(const std::string &path)
{
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec)) return false;
  std::FILE *fp = std::fopen(path.c_str(), "rb");
  if (fp == nullptr) return false;
  std::fclose(fp);
  return true;
}

// A metadata value as Python's repr() writes it, so that messages read as the contract's:
// 'float16', -1.0, ['Ar', 'Ar'].
static std::string py_repr(const json &value)
{
  if (value.is_string()) return "'" + value.get<std::string>() + "'";
  if (value.is_boolean()) return value.get<bool>() ? "True" : "False";
  if (value.is_null()) return "None";
  if (value.is_array()) {
    std::vector<std::string> items;
    for (const auto &item : value) items.push_back(py_repr(item));
    return "[" + multiscale_compat::join(items, ", ") + "]";
  }
  return value.dump();
}

// The useful line of a torch or C++ exception: no C++ backtrace, and for an error
// raised inside TorchScript the final "SomeError: message" line instead of the preamble.
static std::string exception_line(const std::exception &e)
{
  const auto *c10_error = dynamic_cast<const c10::Error *>(&e);
  const std::string text = c10_error ? c10_error->what_without_backtrace() : e.what();
  std::vector<std::string> lines;
  for (const auto &line : utils::split_lines(text))
    if (!utils::trim(line).empty()) lines.push_back(utils::trim(line));
  if (lines.empty()) return "unknown error";
  if (utils::strmatch(lines.front(), "^The following operation failed in the TorchScript"))
    return lines.back();
  return lines.front();
}

// error->one with this rank's output flushed first: `lmp` aborts every rank as soon as one
// rank's error reaches main(), and the message, still in a buffer, would be lost.
[[noreturn]] static void stop_one(LAMMPS *lmp, const std::string &file, int line,
                                  const std::string &message)
{
  try {
    lmp->error->one(file, line, message);
  } catch (...) {
    if (lmp->screen) fflush(lmp->screen);
    if (lmp->logfile) fflush(lmp->logfile);
    fflush(stdout);
    throw;
  }
}

/* ----------------------------------------------------------------------
   construction, settings, coeff, init
------------------------------------------------------------------------- */

PairMultiscale::PairMultiscale(LAMMPS *lmp) :
    Pair(lmp), cutoff(0.0), hops(1), model_virials(false), tally_ghost_energies(false), whole_system(false),
    use_float32(false), device(torch::kCPU), model_uses_spin(false), cutghost_set(0.0),
    total_charge(0.0), spin_multiplicity(1), spin_given(false), energy_scale(1.0),
    per_molecule(false), model_grouped(false), model_inline(false), nmolecules(0),
    nlocal_nodes(0), nedges(0)
{
  single_enable = 0;
  restartinfo = 0;
  one_coeff = 1;
  manybody_flag = 1;
  no_virial_fdotr_compute = 1;
  centroidstressflag = CENTROID_NOTAVAIL;
}

PairMultiscale::~PairMultiscale()
{
  if (allocated) {
    memory->destroy(setflag);
    memory->destroy(cutsq);
    memory->destroy(cutghost);
  }
}

void PairMultiscale::allocate()
{
  allocated = 1;
  const int n = atom->ntypes + 1;
  memory->create(setflag, n, n, "pair:setflag");
  memory->create(cutsq, n, n, "pair:cutsq");
  memory->create(cutghost, n, n, "pair:cutghost");
  type_map.assign(n, -1);
  for (int i = 0; i < n; i++)
    for (int j = 0; j < n; j++) setflag[i][j] = 0;
}

// pair_style multiscale MODEL.pt [dtype float64|float32] [charge Q|molecule] [spin M]
//                                [device cpu|cuda|cuda:N]
void PairMultiscale::settings(int narg, char **arg)
{
  static const char usage[] =
      "pair_style multiscale MODEL.pt [dtype float64|float32] [charge Q|molecule] "
      "[spin MULTIPLICITY] [device cpu|cuda|cuda:N]";
  if (narg < 1 || narg % 2 == 0)
    error->all(FLERR, "pair_style multiscale takes a model file and keyword/value pairs: {}", usage);
  std::string dtype, device_name = "cpu";
  for (int iarg = 1; iarg < narg; iarg += 2) {
    const std::string key = arg[iarg];
    if (key == "device") {
      device_name = arg[iarg + 1];
    } else if (key == "dtype") {
      dtype = arg[iarg + 1];
      if (dtype != "float64" && dtype != "float32")
        error->all(FLERR, "pair_style multiscale: dtype must be float64 or float32, got {}", dtype);
    } else if (key == "charge") {
      per_molecule = strcmp(arg[iarg + 1], "molecule") == 0;
      if (!per_molecule) total_charge = utils::numeric(FLERR, arg[iarg + 1], false, lmp);
    } else if (key == "spin") {
      spin_given = true;
      spin_multiplicity = utils::inumeric(FLERR, arg[iarg + 1], false, lmp);
      if (spin_multiplicity < 1)
        error->all(FLERR, "pair_style multiscale: spin is the multiplicity 2S+1 >= 1, got {}",
                   spin_multiplicity);
    } else {
      error->all(FLERR, "pair_style multiscale: unknown keyword {}; usage: {}", key, usage);
    }
  }

  select_device(device_name);
  load_model(resolve_model(arg[0]));
  if (!dtype.empty() && (dtype == "float32") != use_float32) {
    if (package)
      error->all(FLERR,
                 "pair_style multiscale: compiled model {} computes in {}, not {}: a .pt2 is "
                 "compiled for one dtype; compile one for {} (`multiscale compile --dtype {}`) "
                 "or use the TorchScript file",
                 model_path, use_float32 ? "float32" : "float64", dtype, dtype, dtype);
    use_float32 = dtype == "float32";
    cast_floating(use_float32 ? torch::kFloat32 : torch::kFloat64);
  }
  ghostneigh = hops > 1 && !whole_system ? 1 : 0;   // a whole-system model sees no ghosts

  // a new model invalidates the element mapping of an earlier pair_coeff
  if (allocated) {
    std::fill(type_map.begin(), type_map.end(), -1);
    for (int i = 0; i <= atom->ntypes; i++)
      for (int j = 0; j <= atom->ntypes; j++) setflag[i][j] = 0;
  }

  if (comm->me == 0)
    utils::logmesg(lmp,
                   "pair multiscale: model {} from {}\n  elements {}, cutoff {} Å, hops {}, "
                   "computing in {} on {}\n",
                   model_name, model_path, multiscale_compat::join(model_elements, " "), cutoff, hops,
                   use_float32 ? "float32" : "float64", device.str());
}

// The CUDA half of torch (libtorch_cuda.so beside libtorch_cpu.so), loaded on first use: the
// plugin links the CPU libraries only, so that CPU runs neither load CUDA's libraries nor
// need them installed.  Returns an empty string, or why CUDA cannot be used.
static std::string load_cuda_backend()
{
  // no CUDA query before the dlopen: the first one settles the answer for the process
  Dl_info info;
  const at::CUDAHooksInterface &(*hooks)() = &at::detail::getCUDAHooks;
  if (dladdr(reinterpret_cast<void *>(hooks), &info) == 0 || info.dli_fname == nullptr)
    return "the torch library folder could not be found";
  const auto lib = std::filesystem::path(info.dli_fname).parent_path() / "libtorch_cuda.so";
  if (!readable(lib.string()))
    return fmt::format("this torch ({}) is a CPU-only build (no {}): install torch=={} with CUDA "
                       "(the default wheel on Linux x86_64)", TORCH_VERSION, lib.string(), TORCH_VERSION);
  if (dlopen(lib.c_str(), RTLD_NOW | RTLD_GLOBAL) == nullptr)   // a no-op where Python's torch loaded it
    return fmt::format("{} could not be loaded ({})", lib.string(), dlerror());
  // torch settles once per process whether CUDA is there, at its first use of a CUDA query: a
  // run that used torch on the CPU before this pair_style cannot turn CUDA on any more
  if (!at::detail::getCUDAHooks().hasCUDART())
    return "torch ran on the CPU in this process before CUDA was loaded, and torch decides only once "
           "whether CUDA is present: give `device cuda` on the first pair_style multiscale line of "
           "the run (or import torch in Python before creating LAMMPS)";
  return "";
}

// `device cpu|cuda|cuda:N`: plain cuda gives each MPI rank the GPU (its rank among the ranks
// of its node) modulo the node's GPUs, as other ML pair styles do.
void PairMultiscale::select_device(const std::string &name)
{
  if (name == "cpu") {
    device = torch::Device(torch::kCPU);
    return;
  }
  int index = -1;
  if (name != "cuda") {
    if (!utils::strmatch(name, "^cuda:\\d+$"))
      error->all(FLERR, "pair_style multiscale: device must be cpu, cuda or cuda:N (N = 0, 1, ...), got {}",
                 name);
    index = std::stoi(name.substr(5));
  }
  const std::string why = load_cuda_backend();
  if (!why.empty())
    error->all(FLERR, "pair_style multiscale: device {} asked for, but {}; use `device cpu` (the default)",
               name, why);
  const int count = torch::cuda::device_count();
  if (count == 0)
    error->all(FLERR,
               "pair_style multiscale: device {} asked for, but torch sees no CUDA GPU on this machine "
               "(no NVIDIA driver or GPU, or CUDA_VISIBLE_DEVICES hides them): use `device cpu` (the "
               "default)", name);
  if (index >= count)
    error->all(FLERR, "pair_style multiscale: device {} asked for, but torch sees {} GPU(s), cuda:0 to cuda:{}",
               name, count, count - 1);
  if (index < 0) {
    MPI_Comm node;
    int local = 0;
    MPI_Comm_split_type(world, MPI_COMM_TYPE_SHARED, comm->me, MPI_INFO_NULL, &node);
    MPI_Comm_rank(node, &local);
    MPI_Comm_free(&node);
    index = local % count;
  }
  device = torch::Device(torch::kCUDA, static_cast<c10::DeviceIndex>(index));
}

// A model file, or the file of a model shipped with the multiscale package (`multiscale
// models`: name "si-ani" is <package>/data/si_ani.pt, beside the lib/ folder this plugin is
// installed in), the way multiscale.model.registry resolves names.
std::string PairMultiscale::resolve_model(const std::string &name)
{
  if (readable(name) || name.find('/') != std::string::npos ||
      utils::strmatch(name, "\\.pt$") || utils::strmatch(name, "\\.pt2$"))
    return name;
  Dl_info info;
  if (dladdr(reinterpret_cast<void *>(&exception_line), &info) == 0 || info.dli_fname == nullptr)
    return name;
  std::string file = name;
  std::replace(file.begin(), file.end(), '-', '_');
  // <package>/lib/multiscaleplugin.so -> <package>/data/FILE.pt
  const auto package = std::filesystem::path(info.dli_fname).parent_path().parent_path();
  const std::string shipped = (package / "data" / (file + ".pt")).string();
  return readable(shipped) ? shipped : name;
}

// The TorchScript archive's module; returns its multiscale.json.
std::string PairMultiscale::load_torchscript(const std::string &path)
{
  torch::jit::ExtraFilesMap extra{{METADATA_FILE, ""}};
  auto loaded = std::make_unique<torch::jit::Module>();
  try {
    *loaded = torch::jit::load(path, device, extra);
  } catch (const std::exception &e) {
    error->all(FLERR,
               "pair_style multiscale: model file {} is not a TorchScript archive or is corrupt "
               "({}); re-export it with multiscale.export()",
               path, exception_line(e));
  }
  const std::string &text = extra[METADATA_FILE];
  if (text.empty())
    error->all(FLERR,
               "pair_style multiscale: model file {} has no {} metadata: it is a TorchScript "
               "file but was not written by multiscale.export(); export it with that",
               path, METADATA_FILE);
  module = std::move(loaded);
  module->eval();
  package.reset();
  return text;
}

// The torch.export / AOTInductor package (multiscale.model.compiled) after the checks of its
// Python loader: written by multiscale, for this torch, for the CPU; returns its multiscale.json.
std::string PairMultiscale::load_package(const std::string &path)
{
  const auto refuse = [&](const std::string &why) {
    error->all(FLERR, "pair_style multiscale: compiled model {} {}", path, why);
  };
  std::unique_ptr<torch::inductor::AOTIModelPackageLoader> loaded;
  std::unordered_map<std::string, std::string> stored;
  try {
    loaded = std::make_unique<torch::inductor::AOTIModelPackageLoader>(
        path, "model", false, 1, device.is_cuda() ? device.index() : -1);
    stored = loaded->get_metadata();
  } catch (const std::exception &e) {
    refuse(fmt::format("could not be loaded ({}); it is corrupt or was compiled for another device "
                       "or torch: recompile it with `multiscale compile`",
                       exception_line(e)));
  }
  if (!stored.count(METADATA_FILE) || !stored.count(COMPILED_KEY))
    refuse("is a torch.export package but was not written by multiscale (no multiscale.json "
           "inside); compile it with `multiscale compile`");
  json compiled;
  try {
    compiled = json::parse(stored[COMPILED_KEY]);
  } catch (const json::exception &e) {
    refuse(fmt::format("has unreadable {} ({})", COMPILED_KEY, e.what()));
  }
  if (compiled.value("format_version", 0) != COMPILED_FORMAT)
    refuse(fmt::format("has format version {}, this plugin reads {}: recompile it with `multiscale "
                       "compile`", compiled.value("format_version", json(0)).dump(), COMPILED_FORMAT));
  const std::string built = compiled.value("torch", std::string("?"));
  if (built.substr(0, built.find('+')) != TORCH_VERSION)
    refuse(fmt::format("was built with torch {}, and this plugin runs torch {}: a .pt2 runs only "
                       "under the torch that compiled it; recompile it with `multiscale compile`",
                       built, TORCH_VERSION));
  const std::string built_for = compiled.value("device", std::string("cpu"));
  if ((built_for == "cpu") != device.is_cpu())
    refuse(fmt::format("was compiled for {} and cannot run on {}: {}", built_for, device.str(),
                       device.is_cpu() ? "add `device cuda` to the pair_style line (on a machine with a GPU)"
                                       : "compile one for the GPU (`multiscale compile --device cuda`, on "
                                         "a machine with one), or give the TorchScript .pt"));
  const json outputs = compiled.value("outputs", json::array());
  package_virials = std::find(outputs.begin(), outputs.end(), "virials") != outputs.end();
  package = std::move(loaded);
  module.reset();
  return stored[METADATA_FILE];
}

// Load a model file (TorchScript, or a compiled .pt2) and check its multiscale.json against
// the contract.
void PairMultiscale::load_model(const std::string &path)
{
  if (!readable(path))
    error->all(FLERR,
               "pair_style multiscale: cannot read model file {}: {}; check the path (or give "
               "a shipped model's name: `multiscale models` lists them)",
               path, utils::getsyserror());
  const bool compiled = utils::strmatch(path, "\\.pt2$");
  const std::string text = compiled ? load_package(path) : load_torchscript(path);

  // The checks of multiscale.model.contract.validate, in its words (tests/bad_metadata.py runs
  // one table of bad files against both).
  const auto bad = [&](const std::string &what) {
    error->all(FLERR,
               "pair_style multiscale: model file {}: model metadata: {}; re-export the model with "
               "multiscale.export()",
               path, what);
  };
  json meta;
  try {
    meta = json::parse(text);
  } catch (const json::exception &e) {
    bad(fmt::format("is not valid JSON ({})", e.what()));
  }
  if (!meta.is_object() || meta.value("format", "") != "multiscale-model")
    bad("does not declare format 'multiscale-model'");
  if (meta.value("kind", "potential") == "field")
    error->all(FLERR,
               "pair_style multiscale: model file {} is a crack-field predictor, not an "
               "interatomic potential: give pair_style multiscale a potential (`multiscale "
               "models` lists them)",
               path);
  for (const char *field : {"name", "elements", "cutoff"})
    if (!meta.contains(field)) bad(fmt::format("lacks required field(s) ['{}']", field));
  for (const auto &item : meta.items())
    if (std::find(std::begin(METADATA_FIELDS), std::end(METADATA_FIELDS), item.key()) ==
        std::end(METADATA_FIELDS))
      bad(fmt::format("has unknown field(s) ['{}']", item.key()));
  const json version = meta.value("contract_version", json(1));
  if (!version.is_number_integer() || version.get<int>() < 1 || version.get<int>() > CONTRACT_VERSION)
    bad(fmt::format("contract_version {} is not supported (this plugin reads versions 1 to {}); "
                    "rebuild the plugin with this multiscale (make install)",
                    version.dump(), CONTRACT_VERSION));
  if (!meta["name"].is_string() || meta["name"].get<std::string>().empty())
    bad("name must be a non-empty string");
  const json &elements = meta["elements"];
  if (!elements.is_array() || elements.empty()) bad("elements must list at least one chemical symbol");
  std::vector<std::string> symbols;
  for (const auto &el : elements) {
    const std::string symbol = el.is_string() ? el.get<std::string>() : el.dump();
    if (std::find(std::begin(CHEMICAL_SYMBOLS), std::end(CHEMICAL_SYMBOLS), symbol) ==
        std::end(CHEMICAL_SYMBOLS))
      bad(fmt::format("element '{}' is not a chemical symbol", symbol));
    if (std::find(symbols.begin(), symbols.end(), symbol) != symbols.end())
      bad(fmt::format("elements {} contain duplicates", py_repr(elements)));
    symbols.push_back(symbol);
  }
  const json &rc = meta["cutoff"];
  if (!rc.is_number() || !std::isfinite(rc.get<double>()) || rc.get<double>() <= 0.0)
    bad(fmt::format("cutoff must be a positive number of Å, got {}", py_repr(rc)));
  const json nhops = meta.value("hops", json(1));
  if (!nhops.is_number_integer() || nhops.get<int>() < 1)
    bad(fmt::format("hops must be an integer >= 1, got {}", py_repr(nhops)));
  const json dtype = meta.value("dtype", json("float64"));
  if (dtype != "float64" && dtype != "float32")
    bad(fmt::format("dtype must be one of ('float64', 'float32'), got {}", py_repr(dtype)));
  const json outputs = meta.value("outputs", json::array({"energies"}));
  if (!outputs.is_array() || std::find(outputs.begin(), outputs.end(), "energies") == outputs.end())
    bad("outputs must include 'energies'");
  const json ghosts = meta.value("ghost_energies", json("tally"));   // older files: all counted
  if (ghosts != "ignore" && ghosts != "tally")
    bad(fmt::format("ghost_energies must be one of ('ignore', 'tally'), got {}", py_repr(ghosts)));
  const json widths = meta.value("reductions", json::array());
  std::vector<int64_t> stages;
  if (!widths.is_array()) bad(fmt::format("reductions must be a list of widths, got {}", py_repr(widths)));
  for (const auto &w : widths) {
    if (!w.is_number_integer() || w.get<int>() < 1)
      bad(fmt::format("reductions must be positive integers, got {}", py_repr(widths)));
    stages.push_back(w.get<int64_t>());
  }
  if (!stages.empty() && version.get<int>() < 2)
    bad("declares reductions but contract_version 1; re-export the model");
  if (!stages.empty() && compiled)
    bad("declares reductions, which a compiled .pt2 cannot hold; use the TorchScript file");
  if (!stages.empty())
    for (const char *method : {"reduction_inputs", "forward_reduced"})
      if (!module->find_method(method))
        bad(fmt::format("declares reductions but has no {}() method", method));
  json unknown = json::array();
  for (const auto &o : outputs)
    if (std::find(std::begin(KNOWN_OUTPUTS), std::end(KNOWN_OUTPUTS), o) == std::end(KNOWN_OUTPUTS))
      unknown.push_back(o);
  if (!unknown.empty())
    bad(fmt::format("unknown outputs {}; known: ('energies', 'virials', 'charges', "
                    "'spin_charges', 'attention', 'orbital_energies')",
                    py_repr(unknown)));

  model_path = path;
  model_name = meta["name"].get<std::string>();
  model_elements = symbols;
  cutoff = rc.get<double>();
  hops = nhops.get<int>();
  use_float32 = dtype == "float32";
  model_virials = std::find(outputs.begin(), outputs.end(), "virials") != outputs.end();
  tally_ghost_energies = ghosts == "tally";
  whole_system = meta.value("whole_system", false) == true;
  reductions = stages;
  model_uses_spin = meta.value("uses_spin", false) == true;
  model_grouped = !stages.empty() && module && module->find_method("forward_grouped") &&
      module->find_method("reduction_inputs_grouped");
  model_inline = model_grouped && module->find_method("forward_inline");
}

// The model's floating-point parameters and buffers in `dtype`; integer buffers (index
// tables such as an AEV's pair indices) stay as they are, which Module::to() would not do.
void PairMultiscale::cast_floating(torch::ScalarType dtype)
{
  torch::NoGradGuard no_grad;
  for (const auto &p : module->named_parameters(true))
    if (p.value.is_floating_point()) p.value.set_data(p.value.to(dtype));
  for (const auto &b : module->named_buffers(true))
    if (b.value.is_floating_point()) b.value.set_data(b.value.to(dtype));
}

// pair_coeff * * El1 El2 ... : one model element or NULL per atom type
void PairMultiscale::coeff(int narg, char **arg)
{
  if (!allocated) allocate();
  const int ntypes = atom->ntypes;
  if (narg != 2 + ntypes)
    error->all(FLERR,
               "pair_coeff for multiscale takes `* *` and one element or NULL per atom type: "
               "{} atom types, but {} element arguments",
               ntypes, narg - 2);
  if (strcmp(arg[0], "*") != 0 || strcmp(arg[1], "*") != 0)
    error->all(FLERR, "pair_coeff for multiscale must start with `* *`");

  const bool hybrid = force->pair != this;
  const std::string known = multiscale_compat::join(model_elements, " ");
  int nmapped = 0;
  for (int itype = 1; itype <= ntypes; itype++) {
    const std::string el = arg[itype + 1];
    if (el == "NULL") {
      if (!hybrid)
        error->all(FLERR,
                   "pair_coeff maps atom type {} to NULL, but pair_style multiscale is the only "
                   "pair style: give the type one of the model's elements ({}) or use pair_style "
                   "hybrid/overlay to give it another style",
                   itype, known);
      type_map[itype] = -1;
      continue;
    }
    const auto found = std::find(model_elements.begin(), model_elements.end(), el);
    if (found == model_elements.end())
      error->all(FLERR,
                 "pair_coeff: element {} (atom type {}) is not in model {}, which knows {}; "
                 "use one of these or NULL",
                 el, itype, model_path, known);
    type_map[itype] = static_cast<int>(found - model_elements.begin());
    nmapped++;
  }
  if (nmapped == 0)
    error->all(FLERR, "pair_coeff maps no atom type to an element of model {} ({})", model_path,
               known);

  for (int i = 1; i <= ntypes; i++)
    for (int j = 1; j <= ntypes; j++) setflag[i][j] = (type_map[i] >= 0 && type_map[j] >= 0);
}

void PairMultiscale::init_style()
{
  // Models work in Å and eV; metal and real share Å and e, so only energies (and with them
  // forces and virials) are converted, by LAMMPS' own eV -> kcal/mol factor for real.
  if (strcmp(update->unit_style, "metal") == 0)
    energy_scale = 1.0;
  else if (strcmp(update->unit_style, "real") == 0)
    energy_scale = utils::get_conversion_factor(utils::ENERGY, utils::METAL2REAL);
  else
    error->all(FLERR,
               "pair_style multiscale supports `units metal` (Å, eV) and `units real` (Å, "
               "kcal/mol), not units {}",
               update->unit_style);
  if (force->newton_pair == 0)
    error->all(FLERR, "pair_style multiscale requires newton pair on: use `newton on`");
  // With bonds, LAMMPS drops 1-2/1-3/1-4 pairs whose special_bonds lj factor is 0 from the
  // neighbour list and flags the others for scaling; a potential must see every pair at
  // full weight, or the energy is silently wrong.
  if (atom->molecular != Atom::ATOMIC)
    for (int k = 1; k <= 3; k++)
      if (force->special_lj[k] != 1.0)
        error->all(FLERR,
                   "pair_style multiscale needs every bonded pair at full weight, but special_bonds "
                   "lj is {} {} {}: use `special_bonds lj/coul 1.0 1.0 1.0` (with hybrid/overlay, "
                   "give the other styles their own factors by `pair_modify pair STYLE special lj "
                   "...`)",
                   force->special_lj[1], force->special_lj[2], force->special_lj[3]);

  if (per_molecule)
    setup_molecules();
  else if (model_uses_spin)
    check_charge_spin();

  if (whole_system) {
    // the model's energy couples every atom (an eigenproblem): it must see them all, local
    if (comm->nprocs > 1)
      error->all(FLERR,
                 "pair_style multiscale: model {} solves one eigenproblem for the whole system "
                 "(whole_system in its metadata), which cannot be split over MPI ranks: run it on "
                 "1 rank, not {}",
                 model_path, comm->nprocs);
    if (domain->xperiodic || domain->yperiodic || domain->zperiodic)
      error->all(FLERR,
                 "pair_style multiscale: model {} solves one eigenproblem for the whole system "
                 "(whole_system in its metadata) and has no periodic images: use a non-periodic "
                 "box, `boundary f f f` or `boundary s s s`",
                 model_path);
  }

  if (hops > 1 && !whole_system) {
    // message passing over `hops` edges needs ghost atoms that deep, and their neighbours
    if (comm->mode != Comm::SINGLE)
      error->all(FLERR, "pair_style multiscale with a {}-hop model requires `comm_modify mode "
                        "single`", hops);
    const double needed = hops * cutoff + neighbor->skin;
    if (comm->cutghostuser > 0.0 && comm->cutghostuser != cutghost_set) {
      if (comm->cutghostuser < needed)
        error->all(FLERR,
                   "pair_style multiscale: model {} passes messages over {} hops and needs a "
                   "ghost shell of {} Å (hops x cutoff + skin = {} x {} + {}), but comm_modify "
                   "cutoff is {}: use `comm_modify cutoff {}` or remove that setting",
                   model_path, hops, needed, hops, cutoff, neighbor->skin, comm->cutghostuser,
                   needed);
    } else if (comm->cutghostuser != needed) {
      comm->cutghostuser = cutghost_set = needed;
      if (comm->me == 0)
        utils::logmesg(lmp,
                       "pair multiscale: comm_modify cutoff set to {} Å (hops x cutoff + skin = "
                       "{} x {} + {}) for message passing\n",
                       needed, hops, cutoff, neighbor->skin);
    }
  }
  multiscale_compat::request_full_list(neighbor, this, instance_me, hops > 1);
}

double PairMultiscale::init_one(int i, int j)
{
  cutghost[i][j] = cutghost[j][i] = cutoff;
  return cutoff;
}

/* ----------------------------------------------------------------------
   marshal: LAMMPS atoms and neighbour list -> model nodes and edges
------------------------------------------------------------------------- */

// The model node of LAMMPS atom i, created on first use.
inline int PairMultiscale::add_node(int i)
{
  int &node = node_of[i];
  if (node < 0) {
    node = static_cast<int>(atom_of.size());
    atom_of.push_back(i);
    species.push_back(type_map[atom->type[i]]);
  }
  return node;
}

// Nodes: mapped local atoms first, then mapped ghosts as edges reach them.
// Edges: every mapped pair closer than the cutoff, centred at local atoms, and with
// hops > 1 also centred at ghosts.  edge_index holds the nedges centres, then the
// nedges neighbours, so that it reads as a (2, nedges) array.  Two atoms closer than
// MIN_DISTANCE stop the run (coincident_atoms).
void PairMultiscale::marshal()
{
  const int nall = atom->nlocal + atom->nghost;
  double **x = atom->x;
  const int *type = atom->type;
  const int inum = list->inum;
  const int ncentres = hops > 1 ? inum + list->gnum : inum;
  const int *ilist = list->ilist;
  const int *numneigh = list->numneigh;
  int **firstneigh = list->firstneigh;
  const double cutsq_model = cutoff * cutoff;

  node_of.assign(nall, -1);
  atom_of.clear();
  species.clear();
  for (int ii = 0; ii < inum; ii++)
    if (type_map[type[ilist[ii]]] >= 0) add_node(ilist[ii]);
  nlocal_nodes = static_cast<int>(atom_of.size());
  nedges = 0;
  if (nlocal_nodes == 0) return;

  size_t capacity = 0;
  for (int ii = 0; ii < ncentres; ii++) capacity += numneigh[ilist[ii]];
  if (edge_vectors.size() < 3 * capacity) {
    edge_vectors.resize(3 * capacity);
    edge_index.resize(2 * capacity);
  }
  int64_t *centre = edge_index.data();
  int64_t *neighbour = centre + capacity;
  double *vec = edge_vectors.data();

  int64_t e = 0;
  for (int ii = 0; ii < ncentres; ii++) {
    const int i = ilist[ii];
    if (type_map[type[i]] < 0) continue;
    int node_i = node_of[i];
    const double xi = x[i][0], yi = x[i][1], zi = x[i][2];
    const int *jlist = firstneigh[i];
    const int jnum = numneigh[i];
    for (int jj = 0; jj < jnum; jj++) {
      const int j = jlist[jj] & NEIGHMASK;
      if (type_map[type[j]] < 0) continue;
      const double dx = x[j][0] - xi, dy = x[j][1] - yi, dz = x[j][2] - zi;
      const double rsq = dx * dx + dy * dy + dz * dz;
      if (rsq >= cutsq_model) continue;
      if (rsq < MIN_DISTANCE * MIN_DISTANCE) coincident_atoms(i, j, std::sqrt(rsq));
      if (node_i < 0) node_i = add_node(i);
      centre[e] = node_i;
      neighbour[e] = add_node(j);
      vec[3 * e] = dx;
      vec[3 * e + 1] = dy;
      vec[3 * e + 2] = dz;
      e++;
    }
  }
  // close the gap between the e centres and the e neighbours (ranges may overlap)
  std::memmove(centre + e, neighbour, sizeof(int64_t) * e);
  nedges = e;
}

// Stop at two atoms on top of each other (a model's energy there is NaN or infinite).
void PairMultiscale::coincident_atoms(int i, int j, double r)
{
  const tagint a = std::min(atom->tag[i], atom->tag[j]), b = std::max(atom->tag[i], atom->tag[j]);
  stop_one(lmp, FLERR,
           fmt::format("pair multiscale: atoms {} and {} are {:.3g} Å apart, closer than {} Å: "
                       "the model's energy is not defined for coincident atoms; remove one of them "
                       "(e.g. `delete_atoms overlap 0.5 all all`) or fix the input coordinates",
                       a, b, r, MIN_DISTANCE));
}

/* ----------------------------------------------------------------------
   compute = marshal -> call -> scatter
   The energy is the sum of the LOCAL nodes' energies [0, nlocal_nodes): what a model
   returns for ghost nodes is not counted (their own rank counts them), neither in
   eng_vdwl and eatom nor in the sum whose edge gradient gives forces and virials -- unless
   the model declares ghost_energies = "tally": then its ghost entries are shares of local
   terms (SW's three-body thirds), counted and reverse-communicated in eatom as LAMMPS
   tallies them.
------------------------------------------------------------------------- */

void PairMultiscale::compute(int eflag, int vflag)
{
  ev_init(eflag, vflag);
  marshal();
  if (nlocal_nodes == 0 && reductions.empty()) return;
  const Outputs out = call();
  if (nlocal_nodes == 0) return;   // it took part in the model's global reductions
  scatter_energies(out.energies);
  if (out.charges.defined() && atom->q_flag) {   // the model's charges onto the atoms (e)
    const double *c = out.charges.data_ptr<double>();
    for (int k = 0; k < nlocal_nodes; k++) atom->q[atom_of[k]] = c[k];
  }
  if (!out.grad.defined()) return;
  scatter_forces(out.grad);
  if (vflag_global) scatter_global_virial(out.grad);
  if (vflag_atom) scatter_atom_virials(out.grad, out.virials);
}

// Run the model and its backward pass; checks what it returns against the contract.
PairMultiscale::Outputs PairMultiscale::call()
{
  const int64_t nnodes = static_cast<int64_t>(atom_of.size());
  const auto int64 = torch::TensorOptions().dtype(torch::kInt64);
  // the graph on the model's device (on the CPU these are views of the buffers, no copies)
  const torch::Tensor species_t = torch::from_blob(species.data(), {nnodes}, int64).to(device);
  const torch::Tensor index_t = torch::from_blob(edge_index.data(), {2, nedges}, int64).to(device);
  const torch::Tensor vec64 = torch::from_blob(edge_vectors.data(), {nedges, 3}, torch::kFloat64);
  torch::Tensor vec = vec64.to(device, use_float32 ? torch::kFloat32 : torch::kFloat64).detach();
  vec.requires_grad_(nedges > 0);
  if (package) return call_package(species_t, index_t, vec);
  if (!reductions.empty()) return call_reduced(species_t, index_t, vec);

  c10::IValue result;
  try {
    result = module->forward({species_t, index_t, vec, int64_t(nlocal_nodes), total_charge,
                              int64_t(spin_multiplicity)});
  } catch (const std::exception &e) {
    stop_one(lmp, FLERR,
             fmt::format("pair multiscale: model {} failed: {}", model_path, exception_line(e)));
  }
  Outputs out;
  const torch::Tensor local = counted_energies(result, out);
  try {
    const torch::Tensor energy = local.sum();
    if (nedges > 0 && energy.requires_grad())
      out.grad = torch::autograd::grad({energy}, {vec}, {}, false, false, true)[0];
  } catch (const std::exception &e) {
    stop_one(lmp, FLERR,
             fmt::format("pair multiscale: gradient of model {} failed: {}", model_path,
                         exception_line(e)));
  }
  return finish(local, out);
}

// A compiled model: one call gives the counted energies and their edge gradient (the backward
// pass is inside the package), then the model's own per-atom virials if it has them.
PairMultiscale::Outputs PairMultiscale::call_package(const torch::Tensor &species_t,
                                                     const torch::Tensor &index_t,
                                                     const torch::Tensor &vec)
{
  const int64_t nnodes = species_t.size(0);
  std::vector<torch::Tensor> result;
  try {
    torch::NoGradGuard no_grad;
    result = package->run({species_t.narrow(0, 0, nlocal_nodes),
                           species_t.narrow(0, nlocal_nodes, nnodes - nlocal_nodes), index_t,
                           vec.detach()});
  } catch (const std::exception &e) {
    stop_one(lmp, FLERR,
             fmt::format("pair multiscale: compiled model {} failed: {}", model_path,
                         exception_line(e)));
  }
  const int64_t counted = tally_ghost_energies ? nnodes : nlocal_nodes;
  if (result.size() < (package_virials ? 3u : 2u) || result[0].dim() != 1 ||
      result[0].size(0) != counted || result[1].sizes() != vec.sizes())
    stop_one(lmp, FLERR,
             fmt::format("pair multiscale: compiled model {} returned {} tensors, not energies [{}] "
                         "and an edge gradient [{}, 3]: recompile it with `multiscale compile`",
                         model_path, result.size(), counted, nedges));
  Outputs out;
  if (nedges > 0) out.grad = result[1];
  if (vflag_atom && package_virials) out.virials = result[2];
  return finish(result[0], out);
}

// The energies that count (see compute()) from what forward returned; the model's own
// per-atom virials into out, if asked for.  Checks the result against the contract.
torch::Tensor PairMultiscale::counted_energies(const c10::IValue &result, Outputs &out)
{
  const int64_t nnodes = static_cast<int64_t>(atom_of.size());
  if (!result.isGenericDict() || !result.toGenericDict().contains("energies"))
    stop_one(lmp, FLERR,
             fmt::format("pair multiscale: model {} did not return a dict with 'energies'",
                         model_path));
  const auto dict = result.toGenericDict();
  const torch::Tensor energies = dict.at("energies").toTensor();
  if (dict.contains("charges")) {
    out.charges = dict.at("charges").toTensor();
    if (out.charges.dim() != 1 || out.charges.size(0) < nlocal_nodes)
      stop_one(lmp, FLERR,
               fmt::format("pair multiscale: model {} returned 'charges' of shape {}, expected [{}]",
                           model_path, c10::str(out.charges.sizes()), nlocal_nodes));
  }
  if (energies.dim() != 1 || (energies.size(0) != nnodes && energies.size(0) != nlocal_nodes))
    stop_one(lmp, FLERR,
             fmt::format("pair multiscale: model {} returned 'energies' of shape {}, expected "
                         "[{}] or [{}]",
                         model_path, c10::str(energies.sizes()), nnodes, nlocal_nodes));
  const torch::Tensor local = tally_ghost_energies ? energies : energies.narrow(0, 0, nlocal_nodes);
  if (vflag_atom && model_virials) {
    if (!dict.contains("virials"))
      stop_one(lmp, FLERR,
               fmt::format("pair multiscale: model {} declares 'virials' but did not return them",
                           model_path));
    out.virials = dict.at("virials").toTensor();
    if (out.virials.dim() != 3 || out.virials.size(0) < nlocal_nodes ||
        out.virials.size(0) > nnodes || out.virials.size(1) != 3 || out.virials.size(2) != 3)
      stop_one(lmp, FLERR,
               fmt::format("pair multiscale: model {} returned 'virials' of shape {}, expected "
                           "[{}, 3, 3]",
                           model_path, c10::str(out.virials.sizes()), nnodes));
  }
  return local;
}

// Detached float64 copies on the CPU of what the scatter steps read.
PairMultiscale::Outputs PairMultiscale::finish(const torch::Tensor &local, Outputs &out)
{
  torch::NoGradGuard no_grad;
  const auto host = [](const torch::Tensor &t) { return t.detach().to(torch::kCPU, torch::kFloat64); };
  // eV -> the run's energy unit (1 for metal): energies, their gradients, virials; not charges
  out.energies = (host(local) * energy_scale).contiguous();
  if (out.grad.defined()) out.grad = (host(out.grad) * energy_scale).contiguous();
  if (out.virials.defined()) out.virials = (host(out.virials) * energy_scale).contiguous();
  if (out.charges.defined()) out.charges = host(out.charges).contiguous();
  return out;
}

// Atomic number of a model element (CHEMICAL_SYMBOLS holds every symbol the contract allows).
static long atomic_number(const std::string &symbol)
{
  return 1 + (std::find(std::begin(CHEMICAL_SYMBOLS), std::end(CHEMICAL_SYMBOLS), symbol) -
              std::begin(CHEMICAL_SYMBOLS));
}

// Whether spin multiplicity `mult` fits `electrons` electrons (parity, at most electrons + 1).
static bool spin_possible(long electrons, long mult)
{
  return electrons >= 0 && (electrons - (mult - 1)) % 2 == 0 && mult - 1 <= electrons;
}

// A model that reads the spin multiplicity needs one that fits the electron count
// sum(Z) - Q of the atoms it sees (as multiscale.model.contract.check_charge_spin).
void PairMultiscale::check_charge_spin()
{
  long local = 0, total = 0;
  for (int i = 0; i < atom->nlocal; i++) {
    const int el = type_map[atom->type[i]];
    if (el >= 0) local += atomic_number(model_elements[el]);
  }
  MPI_Allreduce(&local, &total, 1, MPI_LONG, MPI_SUM, world);
  if (std::fabs(total_charge - std::round(total_charge)) > 1e-9) return;
  const long electrons = total - std::lround(total_charge);
  if (!spin_possible(electrons, spin_multiplicity))
    error->all(FLERR,
               "pair_style multiscale: charge {:g} and spin multiplicity {} are impossible for {} "
               "electrons: an even number of electrons needs an odd multiplicity (1 singlet, 3 "
               "triplet, ...), an odd number an even one (2 doublet, 4 quartet, ...), at most "
               "electrons + 1; set `charge Q spin M` on the pair_style line",
               total_charge, spin_multiplicity, electrons);
}

/* `charge molecule`: each molecule's total charge Q is the sum of its atoms' charges as they
   stand at the start of a run (read from the data file, or the model's own charges of the last
   run, which sum to the same totals), rounded when within 1e-6 of an integer; its
   multiplicity is `spin M` if given, else the lowest its electron count allows (1 or 2).
   Atoms without a molecule (ID 0) form one group of their own. */
void PairMultiscale::setup_molecules()
{
  if (!model_grouped)
    error->all(FLERR,
               "pair_style multiscale: `charge molecule` needs a model whose charges are "
               "normalised per group of atoms (forward_grouped, e.g. multiscale's AIMNet2); model "
               "{} takes one total charge for the whole system: give `charge Q` instead",
               model_path);
  if (!atom->molecule_flag || !atom->q_flag)
    error->all(FLERR,
               "pair_style multiscale: `charge molecule` reads each molecule's total charge from "
               "its atoms' charges and needs molecule IDs and charges: use `atom_style full` (or "
               "another style with both) and a data file with them");
  tagint local_max = 0, global_max = 0;
  for (int i = 0; i < atom->nlocal; i++) local_max = std::max(local_max, atom->molecule[i]);
  MPI_Allreduce(&local_max, &global_max, 1, MPI_LMP_TAGINT, MPI_MAX, world);
  nmolecules = global_max;
  const size_t ngroups = static_cast<size_t>(nmolecules) + 1;
  std::vector<double> local(2 * ngroups, 0.0), total(2 * ngroups, 0.0);   // [sum q, sum Z]
  for (int i = 0; i < atom->nlocal; i++) {
    const int el = type_map[atom->type[i]];
    if (el < 0) continue;
    const tagint m = atom->molecule[i];
    local[2 * m] += atom->q[i];
    local[2 * m + 1] += atomic_number(model_elements[el]);
  }
  MPI_Allreduce(local.data(), total.data(), static_cast<int>(total.size()), MPI_DOUBLE, MPI_SUM,
                world);
  molecule_totals.assign(2 * ngroups, 0.0);
  for (size_t m = 0; m < ngroups; m++) {
    double q = total[2 * m];
    if (std::fabs(q - std::round(q)) < 1e-6) q = std::round(q);
    const long electrons = std::lround(total[2 * m + 1]) - std::lround(q);
    int mult = spin_given ? spin_multiplicity : (electrons % 2 != 0 ? 2 : 1);
    if (total[2 * m + 1] > 0 && model_uses_spin && std::fabs(q - std::round(q)) < 1e-9 &&
        !spin_possible(electrons, mult))
      error->all(FLERR,
                 "pair_style multiscale: molecule {} has charge {:g} and {} electrons, for which "
                 "spin multiplicity {} is impossible (an even count needs an odd multiplicity, an "
                 "odd count an even one); drop `spin` to give each molecule its lowest, or fix "
                 "the molecule's charges in the data file",
                 m, q, electrons, mult);
    molecule_totals[2 * m] = q;
    molecule_totals[2 * m + 1] = mult;
  }
}

// Sum of a per-rank vector over all ranks (MPI_Allreduce in float64), in the model's dtype.
torch::Tensor PairMultiscale::global_sum(const torch::Tensor &partial)
{
  torch::Tensor in = partial.detach().to(torch::kCPU, torch::kFloat64).contiguous();
  torch::Tensor total = torch::empty_like(in);
  MPI_Allreduce(in.data_ptr<double>(), total.data_ptr<double>(), static_cast<int>(in.numel()),
                MPI_DOUBLE, MPI_SUM, world);
  return total.to(device, use_float32 ? torch::kFloat32 : torch::kFloat64);
}

/* A model with reductions (contract version 2): stage k's per-atom inputs x_k (n_local, w_k)
   are summed over every rank's local atoms into S_k, which the later stages and
   forward_reduced read.  The gradient of E = sum_ranks E_r follows the same path back:
   dE/dS_k is summed over ranks (the adjoint of the sum) and pushed through x_k into the
   edge vectors and the earlier sums, from the last stage to the first.  Every rank makes
   the same MPI calls, ranks without atoms with zeros. */
PairMultiscale::Outputs PairMultiscale::call_reduced(const torch::Tensor &species_t,
                                                     const torch::Tensor &index_t,
                                                     torch::Tensor &vec)
{
  const size_t nstages = reductions.size();
  const auto dtype =
      torch::TensorOptions().dtype(use_float32 ? torch::kFloat32 : torch::kFloat64).device(device);
  const bool any = nlocal_nodes > 0;
  const auto fail = [&](const char *what, const std::exception &e) {
    stop_one(lmp, FLERR,
             fmt::format("pair multiscale: {} of model {} failed: {}", what, model_path,
                         exception_line(e)));
  };
  if (any) vec.requires_grad_(true);
  // A model with grouped methods gets each node's group sums (n_nodes, w) and state
  // (n_nodes, 3) = [Q, M, phi]: one group for the whole system, or one per molecule.  Its sums
  // S_k are (G, w) tensors, summed over ranks; the nodes read rows of them.
  const bool grouped = model_grouped;
  const int64_t ngroups = per_molecule ? nmolecules + 1 : 1;
  const int64_t nnodes = static_cast<int64_t>(atom_of.size());
  const auto int64 = torch::TensorOptions().dtype(torch::kInt64);
  torch::Tensor group_nodes = torch::zeros({nnodes}, int64), group_local, node_totals;
  if (grouped) {
    if (per_molecule) {
      int64_t *g = group_nodes.data_ptr<int64_t>();
      for (int64_t k = 0; k < nnodes; k++) g[k] = atom->molecule[atom_of[k]];
    }
    group_nodes = group_nodes.to(device);
    group_local = group_nodes.slice(0, 0, nlocal_nodes);
    const torch::Tensor totals =
        (per_molecule ? torch::from_blob(molecule_totals.data(), {ngroups, 2},
                                         torch::TensorOptions().dtype(torch::kFloat64)).clone()
                      : torch::tensor({total_charge, double(spin_multiplicity)},
                                      torch::TensorOptions().dtype(torch::kFloat64)).view({1, 2}))
            .to(device);
    // [Q, M] of each node's group and the external potential, 0 V: LAMMPS has none to give
    node_totals = torch::cat({totals.to(dtype.dtype()).index_select(0, group_nodes),
                              torch::zeros({nnodes, 1}, dtype)}, 1);
  }
  const auto shape = [&](size_t k) {
    return grouped ? std::vector<int64_t>{ngroups, reductions[k]} : std::vector<int64_t>{reductions[k]};
  };
  const auto args = [&](std::vector<c10::IValue> head, const std::vector<torch::Tensor> &sums) {
    for (const c10::IValue &v : std::vector<c10::IValue>{species_t, index_t, vec,
                                                         int64_t(nlocal_nodes)})
      head.push_back(v);
    if (grouped) {
      head.push_back(node_totals);
    } else {
      head.push_back(total_charge);
      head.push_back(int64_t(spin_multiplicity));
    }
    c10::List<torch::Tensor> list;
    for (const torch::Tensor &t : sums) list.push_back(grouped ? t.index_select(0, group_nodes) : t);
    head.push_back(list);
    return head;
  };
  // One rank holds every atom of the system: a model that can take its sums inline
  // (forward_inline) runs each pass once instead of once per stage.
  if (grouped && any && comm->nprocs == 1 && model_inline) {
    Outputs out;
    c10::IValue result;
    try {
      result = module->get_method("forward_inline")(
          {species_t, index_t, vec, int64_t(nlocal_nodes), node_totals, group_nodes, ngroups});
    } catch (const std::exception &e) {
      fail("forward_inline", e);
    }
    const torch::Tensor local = counted_energies(result, out);
    try {
      const torch::Tensor energy = local.sum();
      if (energy.requires_grad() && nedges > 0)
        out.grad = torch::autograd::grad({energy}, {vec}, {}, false, false, true)[0];
      if (nedges > 0 && !out.grad.defined()) out.grad = torch::zeros_like(vec);
    } catch (const std::exception &e) {
      fail("gradient", e);
    }
    return finish(local, out);
  }
  const char *inputs_method = grouped ? "reduction_inputs_grouped" : "reduction_inputs";
  const char *forward_method = grouped ? "forward_grouped" : "forward_reduced";
  std::vector<torch::Tensor> sums, inputs;
  for (size_t k = 0; k < nstages; k++) {
    torch::Tensor x = torch::zeros(shape(k), dtype);
    if (any) {
      try {
        x = module->get_method(inputs_method)(args({int64_t(k)}, sums)).toTensor();
      } catch (const std::exception &e) {
        fail(inputs_method, e);
      }
      if (x.dim() != 2 || x.size(0) != nlocal_nodes || x.size(1) != reductions[k])
        stop_one(lmp, FLERR,
                 fmt::format("pair multiscale: model {} returned reduction inputs of shape {} "
                             "at stage {}, expected [{}, {}]",
                             model_path, c10::str(x.sizes()), k, nlocal_nodes, reductions[k]));
      inputs.push_back(x);
      x = grouped ? torch::zeros(shape(k), dtype).index_add(0, group_local, x) : x.sum(0);
    }
    sums.push_back(global_sum(x).requires_grad_(true));
  }
  Outputs out;
  if (!any) {   // the adjoint reductions, with nothing of our own to add
    for (size_t k = 0; k < nstages; k++) global_sum(torch::zeros(shape(k), dtype));
    return out;
  }
  c10::IValue result;
  try {
    result = module->get_method(forward_method)(args({}, sums));
  } catch (const std::exception &e) {
    fail(forward_method, e);
  }
  const torch::Tensor local = counted_energies(result, out);
  try {
    std::vector<torch::Tensor> wrt{vec};
    wrt.insert(wrt.end(), sums.begin(), sums.end());
    std::vector<torch::Tensor> adjoint(nstages);
    torch::Tensor grad = torch::zeros_like(vec);
    const torch::Tensor energy = local.sum();
    if (energy.requires_grad()) {
      const auto g = torch::autograd::grad({energy}, wrt, {}, true, false, true);
      if (g[0].defined()) grad = grad + g[0];
      for (size_t k = 0; k < nstages; k++) adjoint[k] = g[k + 1];
    }
    for (size_t k = nstages; k-- > 0;) {
      const torch::Tensor mine = adjoint[k].defined() ? adjoint[k] : torch::zeros(shape(k), dtype);
      const torch::Tensor total = global_sum(mine);
      if (!inputs[k].requires_grad()) continue;
      std::vector<torch::Tensor> earlier{vec};
      earlier.insert(earlier.end(), sums.begin(), sums.begin() + k);
      const torch::Tensor weight = grouped ? total.index_select(0, group_local) : total;
      const auto g = torch::autograd::grad({(inputs[k] * weight).sum()}, earlier, {}, true, false, true);
      if (g[0].defined()) grad = grad + g[0];
      for (size_t j = 0; j < k; j++)
        if (g[j + 1].defined()) adjoint[j] = adjoint[j].defined() ? adjoint[j] + g[j + 1] : g[j + 1];
    }
    if (nedges > 0) out.grad = grad;
  } catch (const std::exception &e) {
    fail("gradient", e);
  }
  return finish(local, out);
}

// eng_vdwl and eatom from the counted nodes' energies, eV (see compute()).
void PairMultiscale::scatter_energies(const torch::Tensor &energies)
{
  if (!eflag_either) return;
  const double *en = energies.data_ptr<double>();
  for (int64_t k = 0; k < energies.size(0); k++) {
    if (eflag_global) eng_vdwl += en[k];
    if (eflag_atom) eatom[atom_of[k]] += en[k];
  }
}

// f_i += g_e, f_j -= g_e for dE/d(edge vector) g (nedges, 3): a plain loop, as index_add_ is
// slow for rows of 3.  Ghost forces go back to their owners by LAMMPS' reverse comm.
void PairMultiscale::scatter_forces(const torch::Tensor &grad)
{
  double **f = atom->f;
  const double *gn = grad.data_ptr<double>();
  const int64_t *centre = edge_index.data();
  const int64_t *neighbour = centre + nedges;
  for (int64_t e = 0; e < nedges; e++) {
    const double *ge = gn + 3 * e;
    double *fi = f[atom_of[centre[e]]];
    double *fj = f[atom_of[neighbour[e]]];
    fi[0] += ge[0];
    fi[1] += ge[1];
    fi[2] += ge[2];
    fj[0] -= ge[0];
    fj[1] -= ge[1];
    fj[2] -= ge[2];
  }
}

// The global virial W[a][b] = -sum_e r_e,a g_e,b, in LAMMPS' order xx yy zz xy xz yz.
void PairMultiscale::scatter_global_virial(const torch::Tensor &grad)
{
  const torch::Tensor vec64 = torch::from_blob(edge_vectors.data(), {nedges, 3}, torch::kFloat64);
  const torch::Tensor w = torch::mm(vec64.t(), grad).contiguous();
  const double *wn = w.data_ptr<double>();
  virial[0] -= wn[0];
  virial[1] -= wn[4];
  virial[2] -= wn[8];
  virial[3] -= wn[1];
  virial[4] -= wn[2];
  virial[5] -= wn[5];
}

// Per-atom virials: the model's own attribution (virials (n, 3, 3) eV) if it gives one, else
// each edge's half to each of its two atoms.
void PairMultiscale::scatter_atom_virials(const torch::Tensor &grad, const torch::Tensor &virials)
{
  if (virials.defined()) {
    const double *vn = virials.data_ptr<double>();
    for (int64_t k = 0; k < virials.size(0); k++) {
      double *va = vatom[atom_of[k]];
      const double *w = vn + 9 * k;
      va[0] += w[0];
      va[1] += w[4];
      va[2] += w[8];
      va[3] += w[1];
      va[4] += w[2];
      va[5] += w[5];
    }
    return;
  }
  const double *gn = grad.data_ptr<double>();
  const double *r = edge_vectors.data();
  const int64_t *centre = edge_index.data();
  const int64_t *neighbour = centre + nedges;
  for (int64_t e = 0; e < nedges; e++) {
    const double *re = r + 3 * e, *ge = gn + 3 * e;
    const double v[6] = {-0.5 * re[0] * ge[0], -0.5 * re[1] * ge[1], -0.5 * re[2] * ge[2],
                         -0.5 * re[0] * ge[1], -0.5 * re[0] * ge[2], -0.5 * re[1] * ge[2]};
    double *vi = vatom[atom_of[centre[e]]];
    double *vj = vatom[atom_of[neighbour[e]]];
    for (int k = 0; k < 6; k++) {
      vi[k] += v[k];
      vj[k] += v[k];
    }
  }
}
