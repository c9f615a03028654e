import json

import pytest

from execrl.errors import DataError
from execrl.evaluation.report import write_report

pytest.importorskip("matplotlib")


def _rows(tmp_path):
    rows = []
    for t, outcomes in {"A/0": ["passed", "failed", "passed"], "A/1": ["error", "timeout", "failed"]}.items():
        for i, st in enumerate(outcomes):
            rows.append({"task_id": t, "completion_id": i, "passed": st == "passed", "status": st,
                         "detail": "<script>alert(1)</script>" if st == "error" else ""})
    p = tmp_path / "r.jsonl"
    p.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return p


def test_report_writes_html_and_png_with_escaped_details(tmp_path):
    paths = write_report(str(_rows(tmp_path)), str(tmp_path / "out" / "rep.html"))
    page = open(paths["html"]).read()
    assert open(paths["png"], "rb").read(8) == b"\x89PNG\r\n\x1a\n"
    assert "<script>alert" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "pass@1" in page and "0.3333" in page  # (2/3 + 0/3) / 2
    assert page.index("A/0") < page.index("A/1")  # best tasks first
    assert page.count('class="c"') == 6


def test_report_bad_input(tmp_path):
    (tmp_path / "e.jsonl").write_text("")
    with pytest.raises(DataError, match="no results"):
        write_report(str(tmp_path / "e.jsonl"), str(tmp_path / "e.html"))
    (tmp_path / "m.jsonl").write_text('{"task_id": "x"}\n')
    with pytest.raises(DataError, match="line 1: missing field 'passed', 'status'"):
        write_report(str(tmp_path / "m.jsonl"), str(tmp_path / "m.html"))
