#!/bin/bash
# Issue 15's two-sum grid as it was run (eleventh and twelfth sessions), in order. Run it from the
# repository root with the e2e venv (`bash tests/e2e/setup_venv.sh`); every command reuses the
# finished runs of the same settings (--resume), so a stopped grid is restarted as it is.
set -u
D=".venv-e2e/bin/dupo-verl demo two-sum --val-problems 600 --resume"
stages() {  # $1 methods, $2 seeds: 24 steps, then continued to 48 and 72
  $D --output runs/grid15_24 --methods "$1" --seeds "$2"
  $D --output runs/grid15_48 --methods "$1" --seeds "$2" --continue-from runs/grid15_24
  $D --output runs/grid15_72 --methods "$1" --seeds "$2" --continue-from runs/grid15_48
}
stages warm_start,oracle,dupo_ensemble_anchored 1              # seed 0 through 72 steps
stages warm_start,dupo_frozen_ensemble 1                       # twelfth session
$D --output runs/grid15_24 --methods warm_start,oracle,dupo_frozen_ensemble --seeds 3
$D --output runs/grid15_24 --methods warm_start,dupo_ensemble_anchored --seeds 3
$D --output runs/grid15_48 --methods warm_start,oracle,dupo_frozen_ensemble --seeds 2 --continue-from runs/grid15_24
# thirteenth session: seeds 1-2 of the oracle and the frozen ensemble through 72 steps (the 72-step
# stage was run twice: Ray's memory monitor killed seed 1's frozen-ensemble run, --resume retrained it)
$D --output runs/grid15_48 --methods warm_start,oracle,dupo_frozen_ensemble --seeds 3 --continue-from runs/grid15_24
$D --output runs/grid15_72 --methods warm_start,oracle,dupo_frozen_ensemble --seeds 3 --continue-from runs/grid15_48
# the tables over every method (no training: --collect)
$D --output runs/grid15_48 --methods warm_start,oracle,dupo_ensemble_anchored,dupo_frozen_ensemble --seeds 3 --collect --continue-from runs/grid15_24
$D --output runs/grid15_72 --methods warm_start,oracle,dupo_ensemble_anchored,dupo_frozen_ensemble --seeds 3 --collect --continue-from runs/grid15_48
# fourteenth session: the shuffled control's 24-step stage (it collapsed every seed; not continued), the
# anchored ensemble's seeds 1-2 through 72 steps, and the tables again
$D --output runs/grid15_24 --methods warm_start,shuffled --seeds 3
$D --output runs/grid15_48 --methods warm_start,dupo_ensemble_anchored --seeds 3 --continue-from runs/grid15_24
$D --output runs/grid15_72 --methods warm_start,dupo_ensemble_anchored --seeds 3 --continue-from runs/grid15_48
$D --output runs/grid15_24 --methods warm_start,oracle,dupo_ensemble_anchored,dupo_frozen_ensemble,shuffled --seeds 3 --collect
$D --output runs/grid15_48 --methods warm_start,oracle,dupo_ensemble_anchored,dupo_frozen_ensemble --seeds 3 --collect --continue-from runs/grid15_24
$D --output runs/grid15_72 --methods warm_start,oracle,dupo_ensemble_anchored,dupo_frozen_ensemble --seeds 3 --collect --continue-from runs/grid15_48
# fifteenth session: runs/ was gone and the warm starts did not come out the same on this machine
# (seed 0: 1465 steps, 42.5 % held-out, where the grid's was 995 steps, 38.7 %), so a second set,
# 24 steps on its own warm starts (the frozen ensemble, the shuffled control and the likelihood judge
# from a worktree of 0e5c5ee, with shared dual calls; the others from e5a378c)
$D --output runs/grid15_24 --methods warm_start,dupo_ensemble --seeds 3
$D --output runs/grid15_24 --methods warm_start,dupo_ensemble,oracle --seeds 3
$D --output runs/grid15_24 --methods warm_start,dupo_frozen_ensemble --seeds 3
$D --output runs/grid15_24 --methods warm_start,shuffled --seeds 1
$D --output runs/grid15_24 --methods warm_start,dupo_likelihood --seeds 1
$D --output runs/grid15_24 --methods warm_start,dupo_likelihood --seeds 3  # after a clean-clone CI
$D --output runs/grid15_24 --methods warm_start,shuffled --seeds 3
# its tables (set2_24_steps_seed0/, then set2_24_steps/), and the first set's runs refused beside them
$D --output runs/grid15_24 --methods warm_start,oracle,dupo_ensemble,dupo_frozen_ensemble,shuffled,dupo_likelihood --seeds 1 --collect
$D --output runs/grid15_24 --methods warm_start,oracle,dupo_ensemble,dupo_frozen_ensemble,dupo_likelihood,shuffled --seeds 3 --collect
$D --output runs/grid15_24 --methods warm_start,oracle,dupo_ensemble,dupo_frozen_ensemble --seeds 3 --collect \
  --merge-results docs/results/two_sum_long_runs/24_steps/results.json  # error: not the same warm start
# sixteenth session (runs/ kept this time, from a worktree of a492821): the second set's oracle and
# frozen ensemble through 48 and 72 steps, and their tables (set2_48_steps/, set2_72_steps/)
$D --output runs/grid15_48 --methods warm_start,oracle,dupo_frozen_ensemble --seeds 3 --continue-from runs/grid15_24
$D --output runs/grid15_72 --methods warm_start,oracle,dupo_frozen_ensemble --seeds 3 --continue-from runs/grid15_48
$D --output runs/grid15_48 --methods warm_start,oracle,dupo_frozen_ensemble --seeds 3 --collect --continue-from runs/grid15_24
$D --output runs/grid15_72 --methods warm_start,oracle,dupo_frozen_ensemble --seeds 3 --collect --continue-from runs/grid15_48
$D --output runs/grid15_48 --methods warm_start,dupo_likelihood --seeds 3 --continue-from runs/grid15_24  # after a clean-clone CI
$D --output runs/grid15_48 --methods warm_start,oracle,dupo_frozen_ensemble,dupo_likelihood --seeds 3 --collect --continue-from runs/grid15_24
# seventeenth session (runs/ kept, from a worktree of b97b159): the second set's missing judges;
# the first two commands' seed 2 / seed 0 were killed by Ray's memory monitor (a probe beside them),
# and the same commands with --resume trained only those again
$D --output runs/grid15_72 --methods warm_start,dupo_likelihood --seeds 3 --continue-from runs/grid15_48
$D --output runs/grid15_24 --methods warm_start,dupo_anchored --seeds 3
$D --output runs/grid15_48 --methods warm_start,dupo_ensemble --seeds 3 --continue-from runs/grid15_24
$D --output runs/grid15_72 --methods warm_start,dupo_ensemble --seeds 3 --continue-from runs/grid15_48
$D --output runs/grid15_24 --methods warm_start,oracle,dupo_ensemble,dupo_frozen_ensemble,dupo_likelihood,dupo_anchored,shuffled --seeds 3 --collect
$D --output runs/grid15_48 --methods warm_start,oracle,dupo_frozen_ensemble,dupo_likelihood,dupo_ensemble --seeds 3 --collect --continue-from runs/grid15_24
$D --output runs/grid15_72 --methods warm_start,oracle,dupo_frozen_ensemble,dupo_likelihood,dupo_ensemble --seeds 3 --collect --continue-from runs/grid15_48
# not run yet: dupo_anchored past 24 steps, the shuffled control past 24 steps
stages warm_start,dupo_ensemble,dupo_likelihood,dupo_anchored 3
# eighteenth session (runs/ kept, same worktree of b97b159): the live ensemble's 72-step stage
# (seeds 1-2, --resume reused seed 0), the anchored judge's 48-step stage, their tables; then,
# after a clean-clone CI run, the anchored judge's 72-step stage
$D --output runs/grid15_72 --methods warm_start,dupo_ensemble --seeds 3 --continue-from runs/grid15_48
$D --output runs/grid15_72 --methods warm_start,oracle,dupo_ensemble,dupo_likelihood,dupo_frozen_ensemble --seeds 3 --collect --continue-from runs/grid15_48
$D --output runs/grid15_48 --methods warm_start,dupo_anchored --seeds 3 --continue-from runs/grid15_24
$D --output runs/grid15_48 --methods warm_start,oracle,dupo_ensemble,dupo_likelihood,dupo_frozen_ensemble,dupo_anchored --seeds 3 --collect --continue-from runs/grid15_24
$D --output runs/grid15_72 --methods warm_start,dupo_anchored --seeds 3 --continue-from runs/grid15_48
# not run: the shuffled control past 24 steps (collapsed at 24 on every seed)
# nineteenth session (runs/ kept, same worktree of b97b159): the anchored judge's seed 2 at 48-72
# steps (--resume trained only it; seeds 0-1 reused), the shuffled control through 48 and 72 steps
$D --output runs/grid15_72 --methods warm_start,dupo_anchored --seeds 3 --continue-from runs/grid15_48
$D --output runs/grid15_72 --methods warm_start,oracle,dupo_ensemble,dupo_likelihood,dupo_frozen_ensemble,dupo_anchored --seeds 3 --collect --continue-from runs/grid15_48
$D --output runs/grid15_48 --methods warm_start,shuffled --seeds 3 --continue-from runs/grid15_24
$D --output runs/grid15_72 --methods warm_start,shuffled --seeds 3 --continue-from runs/grid15_48
