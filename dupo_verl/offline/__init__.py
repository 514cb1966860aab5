"""Offline DuPO tools: the dual-question filter, reranking by dual accuracy, and their report.

Both tools judge answers with `dupo_verl.scoring.judge_answer`, the code training uses, and write
row-by-row resumable output (`jsonl_writer`, `pipeline`).
"""
