"""The web console of limpet serve (issue 12 item 8, src/http/console.html) in a real headless
Chromium (Debian's chromium + chromium-driver, driven by python3-selenium) against the real
`limpet serve`: the token taken out of the address bar, create, run with output streaming in,
stdout and stderr apart, the value, a traceback, interrupt, the variables, a dead environment
restarted, delete, a wrong token; the server's own state checked over HTTP beside the page.
Screenshots are saved in the test's tmp dir (their paths printed: pytest -s shows them)."""
import http.client
import os
import json
import shutil
import time

import pytest

from conftest import unsanitized

try:
    from selenium import webdriver
    from selenium.common.exceptions import TimeoutException
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import WebDriverWait
except ImportError:  # pragma: no cover - the skip below says so
    webdriver = None

CHROMIUM = shutil.which("chromium")
CHROMEDRIVER = shutil.which("chromedriver")
ERROR_RED = "rgba(179, 38, 30, 1)"  # --err in console.html


@pytest.fixture
def browser():
    if webdriver is None:
        pytest.skip("python3-selenium is not installed (scripts/install-deps)")
    if CHROMIUM is None or CHROMEDRIVER is None:
        pytest.skip("chromium and chromium-driver are not installed (scripts/install-deps)")
    o = webdriver.ChromeOptions()
    o.binary_location = CHROMIUM
    for a in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
              "--window-size=1280,900", "--no-first-run", "--disable-extensions"):
        o.add_argument(a)
    o.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    # not the ASan runtime the sanitizer suite preloads: Chromium is not ours under test
    d = webdriver.Chrome(service=Service(CHROMEDRIVER, env=unsanitized(os.environ)), options=o)
    yield d
    d.quit()


class Page:
    def __init__(self, d, base, shots):
        self.d, self.base, self.shots, self.n = d, base, shots, 0

    def wait(self, cond, timeout=10, what=""):
        try:
            return WebDriverWait(self.d, timeout, poll_frequency=0.05).until(lambda _: cond())
        except TimeoutException:
            self.shot("timeout")
            raise AssertionError("waited %ss for %s" % (timeout, what or cond))

    def css(self, sel, root=None):
        return (root or self.d).find_elements(By.CSS_SELECTOR, sel)

    def button(self, label):
        return self.d.find_element(By.CSS_SELECTOR, '[aria-label="%s"]' % label)

    def shot(self, name):
        self.n += 1
        path = self.shots / ("%02d-%s.png" % (self.n, name))
        self.d.save_screenshot(str(path))
        print("screenshot:", path)
        return path

    def env_row(self, name):
        rows = self.css('#envs li[data-name="%s"]' % name)
        return rows[0] if rows else None

    def cells(self):
        return self.css(".env-cells:not([hidden]) section.cell")

    def run(self, code, key=Keys.CONTROL):
        """Types code in the last cell and runs it with key+Enter; the cell."""
        cell = self.cells()[-1]
        ta = cell.find_element(By.TAG_NAME, "textarea")
        ta.send_keys(code)
        ta.send_keys(key, Keys.ENTER)
        return cell

    def new_cell(self):
        count = len(self.cells())
        self.button("New cell").click()
        self.wait(lambda: len(self.cells()) == count + 1, what="a new cell")

    def done(self, cell, timeout=10):
        self.wait(lambda: cell.get_attribute("data-status") not in ("", "running"), timeout,
                  "the run to end")
        return cell.get_attribute("data-status")

    def output(self, cell, stream=None):
        """The text of a cell's output, or of one stream's pieces of it, as the page holds it."""
        sel = ".output" + (" ." + stream if stream else "")
        return self.d.execute_script(
            "return Array.from(arguments[0].querySelectorAll(arguments[1]))"
            ".map((e) => e.textContent).join('')", cell, sel)


def api(serve, token, method, path, body=None):
    host, port = serve.http.rsplit(":", 1)
    c = http.client.HTTPConnection(host, int(port), timeout=10)
    c.request(method, path, body=json.dumps(body) if body is not None else None,
              headers={"Authorization": "Bearer " + token})
    r = c.getresponse()
    data = json.loads(r.read())
    c.close()
    return r.status, data


def test_console(browser, make_serve, tmp_path):
    s = make_serve(http="127.0.0.1:0")
    token = s.token()
    base = "http://" + s.http
    p = Page(browser, base, tmp_path)
    d = browser

    # The token: taken from the address bar into sessionStorage; the page still works on reload.
    d.get(base + "/?token=" + token)
    p.wait(lambda: p.env_row("main") is not None, what="the environment list")
    assert "token" not in d.current_url and token not in d.current_url
    assert d.execute_script("return sessionStorage.getItem('limpet-token')") == token
    d.refresh()
    p.wait(lambda: p.env_row("main") is not None, what="the list after a reload")
    assert p.css("#banner")[0].is_displayed() is False

    # Create exp1: it is on the server, listed ready and selected.
    p.button("New environment name").send_keys("exp1")
    p.button("Create environment").click()
    p.wait(lambda: p.env_row("exp1") is not None
           and p.env_row("exp1").get_attribute("data-state") == "ready", what="exp1 ready")
    assert api(s, token, "GET", "/api/envs/exp1")[1]["state"] == "ready"
    p.wait(lambda: p.env_row("exp1").get_attribute("aria-current") == "true")
    assert d.find_element(By.ID, "env-title").text == "exp1"
    # An API error is shown, not swallowed: the name is taken.
    p.button("New environment name").send_keys("exp1")
    p.button("Create environment").click()
    p.wait(lambda: "env-exists" in d.find_element(By.ID, "notice").text, what="the 409 shown")
    p.button("Dismiss message").click()
    p.button("New environment name").clear()

    # print('hi'), then 21*2 (Shift+Enter runs and moves to a new cell): output, value,
    # run id, status, duration.
    cell = p.run("print('hi')", Keys.SHIFT)
    assert p.done(cell) == "ok"
    assert p.output(cell, "stdout") == "hi\n"
    meta = cell.find_element(By.CLASS_NAME, "meta").text
    assert meta.startswith("run 1 · ok · ") and meta.endswith("ms"), meta
    assert len(p.cells()) == 2
    assert d.switch_to.active_element == p.cells()[1].find_element(By.TAG_NAME, "textarea")
    cell = p.run("21*2")
    assert p.done(cell) == "ok"
    assert cell.find_element(By.CSS_SELECTOR, ".value").text == "→ 42"
    assert cell.find_element(By.CLASS_NAME, "meta").text.startswith("run 2 · ok")

    # stdout and stderr apart, each in order.
    p.new_cell()
    cell = p.run("import sys\nprint('out')\nprint('err', file=sys.stderr)")
    assert p.done(cell) == "ok"
    assert p.output(cell, "stdout") == "out\n" and p.output(cell, "stderr") == "err\n"
    assert cell.find_element(By.CSS_SELECTOR, ".output .stderr").value_of_css_property(
        "color") != cell.find_element(By.CSS_SELECTOR, ".output .stdout").value_of_css_property(
        "color")

    # Streaming: the first line is on the page while the run still goes.
    p.new_cell()
    t0 = time.monotonic()
    cell = p.run("import time\nfor i in range(10):\n    print('line', i, flush=True)\n"
                 "    time.sleep(0.2)\n")
    p.wait(lambda: "line 0" in p.output(cell), 3, "the first line")
    first = time.monotonic() - t0
    assert cell.get_attribute("data-status") == "running"
    assert "line 9" not in p.output(cell)
    assert cell.find_element(By.CLASS_NAME, "meta").text.startswith("run 4 · running")
    assert first < 1.5, first
    p.shot("streaming")
    assert p.done(cell) == "ok"
    assert time.monotonic() - t0 >= 2.0
    assert p.output(cell) == "".join("line %d\n" % i for i in range(10))

    # 1/0: a readable traceback, in the error colour.
    p.new_cell()
    cell = p.run("1/0")
    assert p.done(cell) == "error"
    tb = cell.find_element(By.CSS_SELECTOR, ".traceback")
    assert tb.text.startswith("Traceback (most recent call last):")
    assert tb.text.endswith("ZeroDivisionError: division by zero")
    assert tb.value_of_css_property("color") == ERROR_RED
    assert "monospace" in tb.value_of_css_property("font-family").lower() or \
        "mono" in tb.value_of_css_property("font-family").lower()
    p.shot("traceback")

    # Interrupt a sleep: KeyboardInterrupt within 3 s.
    p.new_cell()
    cell = p.run("import time; time.sleep(30)")
    p.wait(lambda: "run 6" in cell.find_element(By.CLASS_NAME, "meta").text, what="run 6 started")
    time.sleep(0.3)  # into the sleep
    t0 = time.monotonic()
    p.button("Interrupt").click()
    assert p.done(cell, timeout=3) == "interrupted"
    assert time.monotonic() - t0 < 3
    assert cell.find_element(By.CSS_SELECTOR, ".traceback").text.endswith("KeyboardInterrupt")
    p.wait(lambda: "Interrupted run 6" in d.find_element(By.ID, "notice").text)
    p.shot("interrupted")

    # The variables, refreshed after a run.
    p.new_cell()
    cell = p.run("x = 5")
    assert p.done(cell) == "ok"
    p.wait(lambda: p.css('#vars tr[data-name="x"]'), what="x in the variables")
    row = p.css('#vars tr[data-name="x"]')[0]
    assert [td.text for td in p.css("td", row)] == ["x", "int", "5"]
    p.shot("variables")

    # A dead environment: the run says killed, the list says dead; Restart brings it back.
    p.new_cell()
    cell = p.run("import os; os._exit(3)")
    assert p.done(cell) == "killed"
    p.wait(lambda: p.env_row("exp1").get_attribute("data-state") == "dead", what="exp1 dead")
    p.shot("dead")
    p.button("Restart environment exp1").click()
    p.wait(lambda: p.env_row("exp1").get_attribute("data-state") == "ready", what="restarted")
    assert api(s, token, "GET", "/api/envs/exp1")[1]["state"] == "ready"

    # Delete, with a confirmation: Cancel keeps it, Delete removes it on the server.
    p.button("Delete environment exp1").click()
    p.button("Cancel delete").click()
    assert api(s, token, "GET", "/api/envs/exp1")[0] == 200
    p.button("Delete environment exp1").click()
    p.shot("confirm-delete")
    p.button("Confirm delete environment exp1").click()
    p.wait(lambda: p.env_row("exp1") is None, what="exp1 gone from the list")
    assert api(s, token, "GET", "/api/envs/exp1")[0] == 404
    assert d.find_element(By.ID, "env-title").text == "main"

    # A run started elsewhere (here over HTTP, "wait": false) is followed from its start.
    status, ans = api(s, token, "POST", "/api/envs/main/exec",
                      {"code": "import time\nprint('a', flush=True)\ntime.sleep(1)\nprint('b')",
                       "wait": False})
    assert status == 202
    run = ans["run"]
    p.button("Refresh variables").click()  # or the list's next poll
    p.wait(lambda: p.css('[aria-label="Follow run %d"]' % run), 3, "the Follow button")
    p.button("Follow run %d" % run).click()
    cell = p.cells()[-2]  # above the blank cell main had
    assert cell.find_element(By.TAG_NAME, "textarea").get_attribute("value").startswith(
        "# run %d, started elsewhere" % run)
    p.wait(lambda: "a\n" in p.output(cell), 3, "the run's first line")
    assert cell.get_attribute("data-status") == "running"
    assert p.done(cell) == "ok" and p.output(cell) == "a\nb\n"
    assert cell.find_element(By.CLASS_NAME, "meta").text.startswith("run %d · ok" % run)
    p.shot("followed")

    # The page ran under its CSP: nothing refused.
    refused = [e["message"] for e in d.get_log("browser") if "Content Security Policy" in e["message"]]
    assert refused == []

    # A wrong token: a clear 401 message, and a way to give the right one.
    d.get(base + "/?token=wrong")
    banner = d.find_element(By.ID, "banner")
    p.wait(banner.is_displayed, what="the 401 banner")
    assert "refused the token (401 unauthorized)" in banner.text
    assert "limpet serve --print-token" in banner.text
    assert "wrong" not in d.current_url
    p.shot("unauthorized")
    p.button("Token").send_keys(token)
    p.button("Use token").click()
    p.wait(lambda: p.env_row("main") is not None and not banner.is_displayed(),
           what="the list with the right token")
    assert any("/api/envs 401" in line for line in s.log)
    assert all(token not in line for line in s.log)
