"""Answer checking, similarity and reward shaping; knows nothing of verl or DuPO."""
