"""DuPO for verl: dual-task, label-free rewards plugged into verl's GRPO/PPO trainer."""

__version__ = "0.1.0"
