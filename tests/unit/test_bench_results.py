"""The benchmarks' exit code, without running one."""

from pathlib import Path

from bench.common import results_exit_code


def test_a_benchmark_exits_1_when_a_row_failed_and_says_where_its_results_are(capsys):
    path = Path("bench/results/example.json")

    assert results_exit_code(path, [{"result": "PASS"}, {"result": "info"}, {"result": "(over)"}]) == 0
    assert results_exit_code(path, [{"result": "PASS"}, {"result": "FAIL"}]) == 1
    assert capsys.readouterr().err == f"\nresults: {path}\n" * 2
