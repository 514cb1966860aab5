"""CPU demonstrations of DuPO (tiny local models, no model hub)."""
