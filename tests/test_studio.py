"""remomask studio (docs/studio.md): the JSON API in-process, the server live, and the page in a real browser.

All tests share one :class:`~remomask.studio.service.Studio` on the bundled model (loaded once). The browser
test drives Debian's headless Chromium (``/usr/bin/chromium`` + ``/usr/bin/chromedriver``) with Selenium and
is skipped only when Chromium is not installed (``.ci/run`` installs it). ``REMOMASK_SCREENSHOT=1`` saves a
screenshot of the page to ``docs/img/studio.png``.
"""

from __future__ import annotations

import concurrent.futures
import io
import os
import shutil
import socket
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("starlette")
pytest.importorskip("httpx")

import httpx  # noqa: E402
from starlette.testclient import TestClient  # noqa: E402

from remomask.studio.app import MAX_BODY_BYTES, create_app  # noqa: E402
from remomask.studio.service import MAX_PROMPT_CHARS, MAX_STUDIO_SAMPLES, Studio  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")


@pytest.fixture(scope="module")
def studio():
    """One studio (bundled model, CPU) for the whole file; its file store is deleted at the end."""
    s = Studio()
    s.start_loading()
    yield s
    s.close()
    assert not s.store.root.exists()


@pytest.fixture(scope="module")
def client(studio):
    """An in-process client of the studio's app (the Host header of a loopback server)."""
    with TestClient(create_app(studio, close_studio=False), base_url="http://127.0.0.1") as c:
        yield c


@pytest.fixture(scope="module")
def live_url(studio):
    """A real uvicorn server of the studio on a free loopback port, in a thread."""
    import uvicorn

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)
    server = uvicorn.Server(uvicorn.Config(create_app(studio, close_studio=False), log_level="warning",
                                           access_log=False, lifespan="on"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    deadline = time.monotonic() + 30
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    assert server.started, "the studio server did not start"
    yield url
    server.should_exit = True
    thread.join(timeout=10)
    sock.close()


def _one_line(response) -> str:
    body = response.json()
    assert set(body) == {"error"}, body
    assert "\n" not in body["error"] and "Traceback" not in body["error"], body
    return body["error"]


# -- API -----------------------------------------------------------------------------------------------------
def test_health_reports_model_and_skeleton(client, studio):
    h = client.get("/api/health").json()
    assert h["status"] in ("loading", "ready")
    studio.pipeline()
    h = client.get("/api/health").json()
    assert h["status"] == "ready" and h["error"] is None
    assert len(h["skeleton"]["chains"]) == len(h["skeleton"]["sides"]) == 5
    assert set(h["skeleton"]["sides"]) == {"left", "right", "centre"}
    assert h["limits"]["num_samples"] == MAX_STUDIO_SAMPLES


def test_generate_matches_the_pipeline(client):
    r = client.post("/api/generate", json={"prompt": "a person walks forward", "seconds": 3.0, "seed": 7,
                                           "num_samples": 2, "cond_scale": 2.0, "steps": 4})
    assert r.status_code == 200, r.text
    out = r.json()
    assert out["seed"] == 7 and out["settings"]["cond_scale"] == 2.0 and len(out["samples"]) == 2
    for s in out["samples"]:
        joints = np.asarray(s["joints"])
        assert joints.shape == (s["frames"], 22, 3)
        assert 40 <= s["frames"] <= 60 and s["frames"] % 4 == 0 and s["length_source"] == "given"
        assert np.isfinite(joints).all() and 1.0 < np.ptp(joints[..., 1]) < 2.5      # a body, metres
        assert s["retrieved"] and {"id", "caption", "score", "start", "end"} <= set(s["retrieved"][0])
        # the downloads agree with the inline joints
        npy = np.load(io.BytesIO(client.get(f"/api/files/{s['files']['joints']}").content))
        assert npy.shape == joints.shape and np.allclose(npy, joints, atol=1e-4)
        feats = np.load(io.BytesIO(client.get(f"/api/files/{s['files']['features']}").content))
        assert feats.shape == (s["frames"], 263)
    result = client.get(f"/api/files/{out['files']['result']}").json()
    assert result["seed"] == 7 and [s["frames"] for s in result["samples"]] == [s["frames"] for s in out["samples"]]
    # the same seed gives the same motion; the entry of the first hit is viewable
    again = client.post("/api/generate", json={"prompt": "a person walks forward#3", "seed": 7, "num_samples": 2,
                                               "cond_scale": 2.0, "steps": 4}).json()
    assert np.allclose(again["samples"][0]["joints"], out["samples"][0]["joints"])
    entry = client.get(f"/api/entries/{out['samples'][0]['retrieved'][0]['id']}").json()
    assert np.asarray(entry["joints"]).shape == (entry["frames"], 22, 3)


def test_bvh_download_parses(client):
    out = client.post("/api/generate", json={"prompt": "a person jumps", "seconds": 2, "seed": 1,
                                             "steps": 4}).json()
    r = client.get(f"/api/files/{out['samples'][0]['files']['bvh']}")
    assert r.status_code == 200 and r.text.startswith("HIERARCHY")
    assert 'filename="sample_0.bvh"' in r.headers["content-disposition"]
    from remomask.data.mocap.bvh import parse_bvh

    bvh = parse_bvh(r.content, "sample_0.bvh")
    assert len(bvh.motion) == out["samples"][0]["frames"] and abs(bvh.frame_time - 0.05) < 1e-6


@pytest.mark.parametrize("body, status, words", [
    ({"prompt": ""}, 422, "prompt is empty"),
    ({"prompt": "   \ufeff "}, 422, "prompt is empty"),
    ({"seconds": 3}, 422, "prompt is empty"),
    ({"prompt": "a person waves", "seconds": 30}, 422, "outside 2-9.8 s"),
    ({"prompt": "a person waves#1"}, 422, "outside 2-9.8 s"),
    ({"prompt": "a person waves", "frames": 500}, 422, "outside 40-196 frames"),
    ({"prompt": "a person waves", "seconds": 3, "frames": 60}, 422, "not both"),
    ({"prompt": "a person waves#soon"}, 422, "not a number of seconds"),
    ({"prompt": "a person waves", "seconds": "NaN"}, 422, "finite"),
    ({"prompt": "a person waves", "seed": -1}, 422, "seed must be in 0.."),
    ({"prompt": "a person waves", "cond_scale": -1}, 422, "cond_scale must be >= 0"),
    ({"prompt": "a person waves", "num_samples": 0}, 422, "num_samples must be in 1.."),
    ({"prompt": "a person waves", "num_samples": 10_000}, 422, "num_samples must be in 1.."),
    ({"prompt": "x" * (MAX_PROMPT_CHARS + 1)}, 413, "at most"),
    ({"prompt": "a person waves", "path": "/etc/passwd"}, 422, "unknown field"),
    (["a person waves"], 400, "JSON object"),
])
def test_bad_generate_requests_get_one_line(client, body, status, words):
    r = client.post("/api/generate", json=body)
    assert r.status_code == status, r.text
    assert words in _one_line(r)


def test_bodies_are_bounded_and_json(client):
    r = client.post("/api/generate", content=b'{"prompt": "' + b"a" * (2 * MAX_BODY_BYTES) + b'"}',
                    headers={"Content-Type": "application/json"})
    assert r.status_code == 413 and "at most" in _one_line(r)
    r = client.post("/api/generate", content=b'{"prompt": ', headers={"Content-Type": "application/json"})
    assert r.status_code == 400 and "not valid JSON" in _one_line(r)
    r = client.post("/api/generate", content=b'{"prompt": "a person waves"}', headers={"Content-Type": "text/plain"})
    assert r.status_code == 415 and "application/json" in _one_line(r)
    r = client.post("/api/retrieve", json={"text": "a person waves", "k": 1000})
    assert r.status_code == 422 and "k must be in 1..20" in _one_line(r)


@pytest.mark.parametrize("path", [
    "/api/files/..%2F..%2F..%2Fetc%2Fpasswd", "/api/files/%2Fetc%2Fpasswd", "/api/files/..",
    "/api/files/AAAAAAAAAAAAAAAAAAAAAA", "/api/files/not-an-id", "/api/files/%00", "/api/entries/..%2Fmeta.json",
    "/static/..%2Fservice.py", "/static/%2E%2E/app.py",
])
def test_files_only_by_opaque_id(client, path):
    r = client.get(path)
    assert r.status_code == 404, (path, r.status_code, r.text[:200])
    assert "import" not in r.text and "root:" not in r.text


def test_raw_traversal_paths_are_refused(live_url):
    """Paths sent byte for byte (no client-side normalisation) never reach a file."""
    host, port = live_url.removeprefix("http://").split(":")
    for path in ("/api/files/../../../../etc/passwd", "/static/../service.py", "/static/../../cli/_core.py",
                 "/api/files//etc/passwd"):
        with socket.create_connection((host, int(port)), timeout=10) as s:
            s.sendall(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n".encode())
            answer = b""
            while chunk := s.recv(65536):
                answer += chunk
        status = answer.split(b"\r\n", 1)[0]
        assert b" 404 " in status or b" 400 " in status, (path, status)
        assert b"root:" not in answer and b"import" not in answer


def test_foreign_host_header_is_refused(client):
    assert client.get("/api/health", headers={"Host": "attacker.example"}).status_code == 400


def test_retrieve_and_view_hits(client):
    r = client.post("/api/retrieve", json={"text": "a person jumps", "k": 3})
    assert r.status_code == 200, r.text
    hits = r.json()["hits"]
    assert len(hits) == 3 and hits[0]["score"] >= hits[-1]["score"] and "jump" in hits[0]["caption"]
    motion = client.get(f"/api/entries/{hits[0]['id']}").json()
    assert np.asarray(motion["joints"]).shape == (hits[0]["end"] - hits[0]["start"], 22, 3)
    assert client.get("/api/entries/no-such-entry").status_code == 404
    assert "empty" in _one_line(client.post("/api/retrieve", json={"text": " "}))


def test_concurrent_generate_all_succeed(live_url):
    bodies = [{"prompt": p, "seconds": 2.0, "seed": i, "steps": 3} for i, p in
              enumerate(["a person waves", "a person kicks", "a person sits down", "a person turns around"])]

    def post(body):
        return httpx.post(f"{live_url}/api/generate", json=body, timeout=300)

    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        answers = list(pool.map(post, bodies))
    assert [a.status_code for a in answers] == [200] * 4, [a.text[:200] for a in answers]
    for body, a in zip(bodies, answers):
        s = a.json()["samples"][0]
        assert s["prompt"] == body["prompt"] and np.asarray(s["joints"]).shape == (40, 22, 3)
    assert httpx.get(f"{live_url}/api/health").json()["waiting"] == 0


def test_compose_timeline(client, studio):
    if not hasattr(studio.pipeline(), "compose"):
        pytest.skip("this ReMoMaskPipeline has no compose method")
    r = client.post("/api/compose", json={"segments": [{"text": "a person walks forward", "seconds": 2.4},
                                                       {"text": "a person waves", "seconds": 2}],
                                          "seed": 5, "steps": 3})
    assert r.status_code == 200, r.text
    out = r.json()
    joints = np.asarray(out["joints"])
    assert joints.shape == (out["frames"], 22, 3) and out["frames"] == 88
    assert [(s["start"], s["end"]) for s in out["segments"]] == [(0, 48), (48, 88)]
    bvh = client.get(f"/api/files/{out['files']['bvh']}")
    assert bvh.status_code == 200 and bvh.text.startswith("HIERARCHY")
    assert client.get("/api/health").json()["features"]["compose"] is True
    # a timeline is a motion the studio made: edit across its seam
    edited = client.post("/api/edit", json={"motion": out["motion"], "text": "a person jumps", "frames": [40, 56],
                                            "seed": 0, "steps": 3})
    assert edited.status_code == 200, edited.text
    src, new = _npy(client, out["files"]["joints"]), _npy(client, edited.json()["files"]["joints"])
    assert np.array_equal(new[:40], src[:40]) and np.array_equal(new[56:], src[56:])
    for body, status in (({"segments": []}, 422), ({"segments": [{"text": " ", "seconds": 2}]}, 422),
                         ({"segments": [{"text": "a person waves", "seconds": 0.05}]}, 422),
                         ({"segments": [{"text": "a person waves", "seconds": 2}] * 100}, 413),
                         ({"segments": [{"text": "a person waves", "seconds": 1e9}]}, 413)):
        r = client.post("/api/compose", json=body)
        assert r.status_code == status, (body, r.text)
        _one_line(r)


@pytest.fixture(scope="module")
def edit_source(client):
    """A generated 3 s sample (60 frames) to edit, and its joints as the studio wrote them."""
    out = client.post("/api/generate", json={"prompt": "a person walks forward", "seconds": 3, "seed": 2,
                                             "steps": 3}).json()
    sample = out["samples"][0]
    joints = np.load(io.BytesIO(client.get(f"/api/files/{sample['files']['joints']}").content))
    assert sample["frames"] == len(joints) == 60 and isinstance(sample["motion"], str)
    return sample, joints


def _npy(client, file_id) -> np.ndarray:
    r = client.get(f"/api/files/{file_id}")
    assert r.status_code == 200, r.text
    return np.load(io.BytesIO(r.content))


def test_edit_a_range_keeps_the_rest(client, edit_source):
    sample, src = edit_source
    r = client.post("/api/edit", json={"motion": sample["motion"], "text": "a person jumps", "frames": [20, 40],
                                       "seed": 0, "steps": 3})
    assert r.status_code == 200, r.text
    out = r.json()
    assert out["range"] == [20, 40] and out["source"] == sample["motion"] and out["motion"] != sample["motion"]
    assert out["frames"] == out["source_frames"] == 60 and out["parts"] == [] and out["seed"] == 0
    joints = _npy(client, out["files"]["joints"])
    assert joints.shape == src.shape and np.allclose(np.asarray(out["joints"]), joints, atol=1e-4)
    assert np.array_equal(joints[:20], src[:20]) and np.array_equal(joints[40:], src[40:])   # bit for bit
    assert np.abs(joints[20:40] - src[20:40]).max() > 0.01                                    # new content
    assert _npy(client, out["files"]["features"]).shape == (60, 263)
    result = client.get(f"/api/files/{out['files']['result']}").json()
    assert result["frames"] == [20, 40] and result["seed"] == 0 and result["source"] == f"studio:{sample['motion']}"
    bvh = client.get(f"/api/files/{out['files']['bvh']}")
    assert bvh.status_code == 200 and bvh.text.startswith("HIERARCHY")
    # the same seed gives the same edit; an edit can be edited again
    again = client.post("/api/edit", json={"motion": sample["motion"], "text": "a person jumps", "frames": [20, 40],
                                           "seed": 0, "steps": 3}).json()
    assert np.array_equal(_npy(client, again["files"]["joints"]), joints)
    chained = client.post("/api/edit", json={"motion": out["motion"], "text": "a person kicks", "frames": [0, 12],
                                             "seed": 1, "steps": 3})
    assert chained.status_code == 200, chained.text
    assert np.array_equal(_npy(client, chained.json()["files"]["joints"])[12:], joints[12:])


def test_edit_body_parts_and_extend(client, edit_source):
    sample, src = edit_source
    r = client.post("/api/edit", json={"motion": sample["motion"], "text": "a person waves with the right hand",
                                       "frames": [10, 50], "parts": ["right_arm"], "seed": 0, "steps": 3})
    assert r.status_code == 200, r.text
    out = r.json()
    joints = _npy(client, out["files"]["joints"])
    from remomask.pipeline.editing import PARTS

    kept = [j for j in range(22) if j not in PARTS["right_arm"]]
    assert out["parts"] == ["right_arm"] and np.array_equal(joints[:, kept], src[:, kept])
    assert np.abs(joints[10:50] - src[10:50]).max() > 0.01
    r = client.post("/api/edit", json={"motion": sample["motion"], "text": "a person sits down", "extend": 1,
                                       "seed": 0, "steps": 3})
    assert r.status_code == 200, r.text
    out = r.json()
    assert out["range"] == [60, 80] and out["frames"] == 80
    assert np.array_equal(_npy(client, out["files"]["joints"])[:60], src)
    h = client.get("/api/health").json()
    assert h["features"]["edit"] is True and h["parts"] == list(PARTS)


@pytest.mark.parametrize("body, status, words", [
    ({"frames": [20, 999]}, 422, "frame range 20:999 is outside the source (0:60"),
    ({"frames": [30, 20]}, 422, "outside the source"),
    ({"frames": [-1, 20]}, 422, "the range start must be >= 0"),
    ({"frames": [1.5, 20]}, 422, "must be an integer"),
    ({"frames": "20:40"}, 422, "frames must be [start, end]"),
    ({"parts": ["tail"]}, 422, "unknown body part 'tail'; choose from right_arm"),
    ({"parts": "arms", "extend": 1}, 422, "cannot extend"),
    ({"extend": 60}, 422, "at most 9.8 s"),
    ({"text": "  "}, 422, "the edit text is empty"),
    ({"text": None}, 422, "the edit text is empty"),
    ({"text": "x" * (MAX_PROMPT_CHARS + 1)}, 413, "at most"),
    ({"motion": "../../etc/passwd"}, 404, "unknown motion id"),
    ({"motion": "/tmp/sample_0.joints.npy"}, 404, "unknown motion id"),
    ({"motion": "AAAAAAAAAAAAAAAAAAAAAA"}, 404, "unknown motion id"),
    ({"motion": None}, 404, "unknown motion id"),
    ({"source": "/etc/passwd"}, 422, "unknown field 'source'"),
    ({"seed": -3}, 422, "seed must be in 0.."),
])
def test_bad_edit_requests_get_one_line(client, edit_source, body, status, words):
    sample, _ = edit_source
    request = dict({"motion": sample["motion"], "text": "a person jumps", "frames": [20, 40], "steps": 3}, **body)
    r = client.post("/api/edit", json={k: v for k, v in request.items() if v is not None})
    assert r.status_code == status, r.text
    assert words in _one_line(r)


def test_model_load_failure_is_one_line(tmp_path):
    (tmp_path / "pipeline.json").write_text("{not json")
    broken = Studio(tmp_path)
    try:
        with TestClient(create_app(broken), base_url="http://127.0.0.1") as c:
            r = c.post("/api/generate", json={"prompt": "a person waves"})
            assert r.status_code == 503
            line = _one_line(r)
            assert line.startswith("the model failed to load")
            h = c.get("/api/health").json()
            assert h["status"] == "error" and h["error"] == line
    finally:
        broken.close()
    assert not broken.store.root.exists()


def test_cli_refuses_bad_options_before_serving(tmp_path):
    from click.testing import CliRunner

    from remomask.cli import main

    runner = CliRunner()
    r = runner.invoke(main, ["studio", "--model", str(tmp_path / "missing")])
    assert r.exit_code == 2 and r.output.strip().startswith("error: model folder") and "Traceback" not in r.output
    r = runner.invoke(main, ["studio", "--port", "70000"])
    assert r.exit_code == 2 and "--port must be in 1..65535" in r.output
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        r = runner.invoke(main, ["studio", "--port", str(taken.getsockname()[1])])
    assert r.exit_code == 2 and "is in use" in r.output


# -- the page in a real browser -----------------------------------------------------------------------------
def _chromium(download_dir: str):
    webdriver = pytest.importorskip("selenium.webdriver")
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--enable-unsafe-swiftshader", "--window-size=1400,1100",
                 f"--user-data-dir={tempfile.mkdtemp(prefix='remomask-chromium-')}"):
        options.add_argument(flag)
    options.add_experimental_option("prefs", {"download.default_directory": download_dir,
                                              "download.prompt_for_download": False})
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)


def _type(element, text: str) -> None:
    element.clear()
    element.send_keys(text)


def _animates(canvas, seconds: float = 0.8) -> bool:
    """Whether a viewer's canvas shows something and changes over ``seconds`` (the motion plays)."""
    canvas.parent.execute_script("arguments[0].scrollIntoView({block: 'center'})", canvas)
    before = _canvas_pixels(canvas)
    time.sleep(seconds)
    after = _canvas_pixels(canvas)
    return before.shape == after.shape and before.std() > 3 and (np.abs(before - after).sum(axis=-1) > 30).sum() > 50


def _canvas_pixels(element) -> np.ndarray:
    from PIL import Image

    return np.asarray(Image.open(io.BytesIO(element.screenshot_as_png)).convert("RGB"), dtype=np.int16)


@pytest.mark.skipif(not CHROMIUM.exists() or not CHROMEDRIVER.exists(),
                    reason="Debian's chromium and chromium-driver are not installed (.ci/run installs them: "
                           "apt-get install chromium chromium-driver)")
def test_page_in_a_real_browser(live_url, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    downloads = tmp_path / "downloads"
    downloads.mkdir()
    driver = _chromium(str(downloads))
    try:
        wait = WebDriverWait(driver, 120)
        driver.get(live_url + "/")
        wait.until(lambda d: d.find_element(By.ID, "model-status").get_attribute("data-status") == "ready")

        # generate a 5 s motion
        driver.find_element(By.ID, "prompt").send_keys("a person walks forward and waves with the right hand")
        driver.find_element(By.ID, "seconds").send_keys("5")
        driver.find_element(By.ID, "seed").send_keys("3")
        driver.find_element(By.ID, "generate").click()
        wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#results .viewer[data-ready='1']"))
        first_frame_ms = driver.execute_script("return window.studioTimings.firstFrame")
        assert first_frame_ms is not None and first_frame_ms > 0
        print(f"\nstudio: Generate -> first frame in the viewer: {first_frame_ms / 1000:.2f} s "
              f"(server response {driver.execute_script('return window.studioTimings.response') / 1000:.2f} s)")

        # the motion plays: the canvas changes between two moments
        assert _animates(driver.find_element(By.CSS_SELECTOR, "#results .sample canvas")), "the viewer does not animate"
        viewer = driver.find_element(By.CSS_SELECTOR, "#results .viewer")
        assert viewer.get_attribute("data-playing") != "0"

        # pause, scrub, speed
        viewer.find_element(By.CSS_SELECTOR, "button.play").click()
        assert viewer.get_attribute("data-playing") == "0"
        frame = viewer.get_attribute("data-frame")
        time.sleep(0.4)
        assert viewer.get_attribute("data-frame") == frame

        # the retrieved list, and a retrieved entry beside the sample
        items = driver.find_elements(By.CSS_SELECTOR, "#results .retrieved li")
        assert items and "score" in items[0].text
        items[0].find_element(By.TAG_NAME, "button").click()
        wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "#results .viewer-legend .legend-item")) == 2)
        viewer.find_element(By.CSS_SELECTOR, "button.play").click()            # play again, for the screenshot
        if os.environ.get("REMOMASK_SCREENSHOT"):
            time.sleep(1.0)
            target = REPO / "docs" / "img" / "studio.png"
            target.parent.mkdir(parents=True, exist_ok=True)
            driver.save_screenshot(str(target))

        # the BVH download parses
        driver.find_element(By.CSS_SELECTOR, "#results .downloads a[download$='.bvh']").click()
        bvh = downloads / "sample_0.bvh"
        deadline = time.monotonic() + 60
        while not bvh.exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert bvh.exists(), f"no download: {list(downloads.iterdir())}"
        from remomask.data.mocap.bvh import parse_bvh

        assert bvh.read_text().startswith("HIERARCHY") and len(parse_bvh(bvh).motion) == 100

        # edit the sample: select 1-2.5 s (frames 20:50) in its editor panel, new text, Regenerate
        card = driver.find_element(By.CSS_SELECTOR, "#results .sample")
        editor = card.find_element(By.CSS_SELECTOR, "details.editor")
        editor.find_element(By.TAG_NAME, "summary").click()
        _type(editor.find_element(By.CSS_SELECTOR, "input.edit-start"), "1")
        wait.until(lambda d: viewer.get_attribute("data-frame") == "20")          # the start seeks the viewer
        assert viewer.get_attribute("data-playing") == "0"
        _type(editor.find_element(By.CSS_SELECTOR, "input.edit-end"), "2.5")
        selection = (viewer.get_attribute("data-selection-start"), viewer.get_attribute("data-selection-end"))
        assert selection == ("20", "50")
        from remomask.pipeline.editing import PARTS

        assert driver.execute_script("return [...arguments[0].querySelectorAll('fieldset input[type=checkbox]')]"
                                     ".map((c) => c.value)", editor) == list(PARTS)
        editor.find_element(By.CSS_SELECTOR, "input.edit-text").send_keys("a person jumps")
        editor.find_element(By.CSS_SELECTOR, "input.edit-seed").send_keys("0")
        editor.find_element(By.CSS_SELECTOR, "button.edit-run").click()
        edited = wait.until(lambda d: editor.find_elements(By.CSS_SELECTOR, ".edit-result .viewer[data-ready='1']"))[0]
        assert (edited.get_attribute("data-range-start"), edited.get_attribute("data-range-end")) == ("20", "50")
        assert edited.find_element(By.CSS_SELECTOR, ".scrub-range.edited").is_displayed()
        assert _animates(edited.find_element(By.TAG_NAME, "canvas")), "the edit's viewer does not animate"
        source_url = card.find_element(By.CSS_SELECTOR, "a[download='sample_0.joints.npy']").get_attribute("href")
        edit_url = editor.find_element(By.CSS_SELECTOR, "a[download='edit_0.joints.npy']").get_attribute("href")
        src = np.load(io.BytesIO(httpx.get(source_url, timeout=60).content))
        new = np.load(io.BytesIO(httpx.get(edit_url, timeout=60).content))
        assert new.shape == src.shape == (100, 22, 3)
        assert np.array_equal(new[:20], src[:20]) and np.array_equal(new[50:], src[50:])
        assert np.abs(new[20:50] - src[20:50]).max() > 0.01

        # a range outside the source: the one-line error, in the panel
        _type(editor.find_element(By.CSS_SELECTOR, "input.edit-end"), "99")
        editor.find_element(By.CSS_SELECTOR, "button.edit-run").click()
        error = wait.until(lambda d: editor.find_element(By.CSS_SELECTOR, ":scope > .edit-error").text)
        assert error.startswith("error: frame range 20:1980 is outside the source (0:100, 5 s)") and "\n" not in error
        assert len(editor.find_elements(By.CSS_SELECTOR, ".edit-result")) == 1

        # the retrieval tab
        driver.find_element(By.ID, "tab-retrieve-button").click()
        driver.find_element(By.ID, "retrieve-text").send_keys("a person jumps")
        driver.find_element(By.ID, "retrieve").click()
        wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#retrieve-viewer[data-ready='1']"))
        hits = driver.find_elements(By.CSS_SELECTOR, "#retrieve-hits li")
        assert hits and "jump" in hits[0].text

        # the timeline tab: two segments (2 s + 1.6 s) composed into one motion that plays
        driver.find_element(By.ID, "tab-timeline-button").click()
        segments = driver.find_elements(By.CSS_SELECTOR, "#timeline-segments li")
        assert len(segments) == 2
        for li, (text, seconds) in zip(segments, [("a person walks forward", "2"), ("a person waves", "1.6")]):
            _type(li.find_element(By.CSS_SELECTOR, "input.text"), text)
            _type(li.find_element(By.CSS_SELECTOR, "input.seconds"), seconds)
        driver.find_element(By.ID, "timeline-seed").send_keys("4")
        driver.find_element(By.ID, "compose").click()
        wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#timeline-viewer[data-ready='1']"))
        spans = [li.text for li in driver.find_elements(By.CSS_SELECTOR, "#timeline-spans li")]
        assert len(spans) == 2 and "frames 0-40" in spans[0] and "frames 40-72" in spans[1], spans
        assert _animates(driver.find_element(By.CSS_SELECTOR, "#timeline-viewer canvas")), "the timeline does not play"
        assert driver.find_elements(By.CSS_SELECTOR, "#timeline-editor details.editor")

        # an empty prompt: the CLI's one line, in the page
        driver.find_element(By.ID, "tab-generate-button").click()
        driver.find_element(By.ID, "prompt").clear()
        driver.find_element(By.ID, "generate").click()
        error = wait.until(ec.visibility_of_element_located((By.ID, "generate-error")))
        assert error.text.startswith("error: the prompt is empty") and "\n" not in error.text
        severe = [e for e in driver.get_log("browser") if e["level"] == "SEVERE"
                  and "api/generate" not in e["message"] and "api/edit" not in e["message"]]
        assert not severe, severe
    finally:
        driver.quit()
