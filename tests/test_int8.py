"""The benchmark's fair timing of TFLite float32 against int8 (issue 19)."""
import pytest

from tscnn_tf import bench


def test_interleaved_ms_takes_turns_skips_warmup_and_gives_medians(monkeypatch):
    clock, order = [0.0], []
    monkeypatch.setattr(bench.time, "perf_counter", lambda: clock[0])
    costs = {"float32": [9.0, 9.0, 0.002, 0.003, 0.002], "int8": [9.0, 9.0, 0.001, 0.001, 0.5]}

    def call(name):
        clock[0] += costs[name][len([o for o in order if o == name])]
        order.append(name)
    ms = bench.interleaved_ms({name: lambda n=name: call(n) for name in costs}, repeat=3,
                              warmup=2)
    assert order == ["float32", "int8"] * 5      # in turns, warm-up runs included
    assert ms == pytest.approx({"float32": 2.0, "int8": 1.0})  # medians in ms, no warm-up
