/* lmp_multiscale: LAMMPS' `lmp` with pair_style multiscale compiled in.

   For a LAMMPS library built without the PLUGIN package (Debian's liblammps0, some
   cluster builds), where `plugin load` does not exist.  Takes lmp's command line
   (-in FILE, -log, -screen, -var, ...) and runs the input as lmp does.

       mpirun -np 2 lmp_multiscale -in in.silicon
*/

#include "force.h"
#include "input.h"
#include "lammps.h"
#include "pair_multiscale.h"

#include <mpi.h>

#include <cstdio>
#include <exception>

using namespace LAMMPS_NS;

static Pair *create_pair_multiscale(LAMMPS *lmp)
{
  return new PairMultiscale(lmp);
}

int main(int argc, char **argv)
{
  MPI_Init(&argc, &argv);
  try {
    auto *lmp = new LAMMPS(argc, argv, MPI_COMM_WORLD);
    (*lmp->force->pair_map)["multiscale"] = &create_pair_multiscale;
    lmp->input->file();
    delete lmp;
  } catch (const std::exception &e) {
    // LAMMPS has printed its error; stop every rank, as lmp does
    std::fprintf(stderr, "lmp_multiscale: %s\n", e.what());
    MPI_Abort(MPI_COMM_WORLD, 1);
  }
  MPI_Barrier(MPI_COMM_WORLD);
  MPI_Finalize();
  return 0;
}
