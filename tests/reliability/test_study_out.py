"""`samtune study NAME` without --out refuses instead of starting in a default folder (issue 12, item 9)."""

from __future__ import annotations


def test_study_without_out_is_refused(tmp_path, monkeypatch, refused):
    monkeypatch.chdir(tmp_path)  # the old default folder would have appeared here
    refused(["study", "cpu_prostate"], watch=[tmp_path], names=["--out DIR", "--out studies/cpu_prostate"])
