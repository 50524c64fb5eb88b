"""PADet runtime SDK (torch-free)."""
