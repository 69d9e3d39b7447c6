# GPAW build configuration used by `make dft` (GPAW_CONFIG=tools/gpaw-siteconfig.py):
# a serial build (no MPI) against Debian's FFTW, OpenBLAS and libxc.
compiler = 'g++'
mpi = False
fftw = True
libraries += ['fftw3', 'blas']  # noqa: F821 (GPAW's build script defines `libraries`)
