"""verl glue: the self-dual agent loop, the frozen-dual reward manager and the V1 metrics trainers.

Nothing is imported here on purpose: `dupo_verl.plugin` runs in every verl process and must stay
cheap, so each module is imported only when verl itself loads the code it extends.
"""
