"""DuPO dual tasks: decomposition into known/hidden parts, prompts and reconstruction scoring."""

from dupo_verl.tasks.base import (
    Decomposition,
    DualQuestion,
    DualReply,
    DualTask,
    LikelihoodUnsupported,
    Messages,
)
from dupo_verl.tasks.registry import get_task, register_task, task_names

__all__ = [
    "Decomposition",
    "DualQuestion",
    "DualReply",
    "DualTask",
    "LikelihoodUnsupported",
    "Messages",
    "get_task",
    "register_task",
    "task_names",
]
