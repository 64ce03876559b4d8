"""Isotropic power spectra, VRMSE/NRMSE and binned spectral errors (arrives with issue 4)."""
