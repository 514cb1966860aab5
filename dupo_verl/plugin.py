"""Imported by `import verl` in every verl process (entry point group `verl.plugins`)."""
