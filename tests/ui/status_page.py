"""Drives the node's status page (/ui) in headless Chromium through Selenium.

Usage: status_page.py SCENARIO BASE_URL SCREENSHOT_DIR [ARG]

Each scenario does what an operator would, waits (with a deadline) for the page to
show the result, saves a screenshot of each state under SCREENSHOT_DIR, and prints
one line `STEP <name> <json>` per state reached, which the Rust test reads. Any
wait that runs out raises: the script exits non-zero with the page's text and a
screenshot of the failure.

The browser is the system's: WASYA_CHROMIUM (default /usr/bin/chromium) driven by
WASYA_CHROMEDRIVER (default /usr/bin/chromedriver); nothing is downloaded.
"""

import json
import os
import signal
import sys
import time

os.environ.setdefault("SE_OFFLINE", "true")

from selenium import webdriver  # noqa: E402
from selenium.webdriver.chrome.options import Options  # noqa: E402
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.common.exceptions import (  # noqa: E402
    NoSuchElementException,
    StaleElementReferenceException,
)
from selenium.webdriver.common.keys import Keys  # noqa: E402
from selenium.webdriver.support import expected_conditions as EC  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

WAIT = 60
TOKEN = os.environ.get("UI_TOKEN", "")


def step(name, **facts):
    print("STEP", name, json.dumps(facts), flush=True)


def browser(width, height):
    options = Options()
    options.binary_location = os.environ.get("WASYA_CHROMIUM", "/usr/bin/chromium")
    for argument in (
        "--headless=new",
        "--no-sandbox",
        "--disable-dev-shm-usage",
        "--disable-gpu",
        "--no-first-run",
        "--hide-scrollbars",
        "--force-device-scale-factor=1",
        f"--window-size={width},{height}",
    ):
        options.add_argument(argument)
    service = Service(executable_path=os.environ.get("WASYA_CHROMEDRIVER", "/usr/bin/chromedriver"))
    driver = webdriver.Chrome(options=options, service=service)
    driver.set_window_size(width, height)
    return driver


class Page:
    def __init__(self, driver, base, shots):
        self.driver = driver
        self.base = base
        self.shots = shots
        self.followed = ""

    def wait(self, condition, what, timeout=WAIT):
        try:
            # The page redraws as it refreshes: an element may go between two reads.
            return WebDriverWait(
                self.driver,
                timeout,
                poll_frequency=0.1,
                ignored_exceptions=(NoSuchElementException, StaleElementReferenceException),
            ).until(condition)
        except Exception as error:
            raise AssertionError(f"the page did not show {what} within {timeout} s") from error

    def find(self, selector):
        return self.driver.find_element(By.CSS_SELECTOR, selector)

    def all(self, selector):
        return self.driver.find_elements(By.CSS_SELECTOR, selector)

    def text(self, selector):
        found = self.all(selector)
        return found[0].text if found else ""

    def shot(self, name, full=True):
        os.makedirs(self.shots, exist_ok=True)
        path = os.path.join(self.shots, name + ".png")
        if full:
            # The whole page, not only the window: size the window to the page.
            width = self.driver.execute_script("return document.documentElement.clientWidth")
            height = self.driver.execute_script("return document.documentElement.scrollHeight")
            self.driver.execute_script("window.scrollTo(0, 0)")
            original = self.driver.get_window_size()
            self.driver.set_window_size(original["width"], max(original["height"], height + 20))
            time.sleep(0.2)
            self.driver.save_screenshot(path)
            self.driver.set_window_size(original["width"], original["height"])
            del width
        else:
            self.driver.save_screenshot(path)
        return path

    def open(self):
        # The root redirects to the page.
        self.driver.get(self.base + "/")
        self.wait(lambda d: d.current_url.rstrip("/").endswith("/ui"), "the redirect to /ui")
        self.wait_for_actors(["echo"])

    def actor_names(self):
        return [row.get_attribute("data-actor") for row in self.all("#actors tbody tr")]

    def wait_for_actors(self, names):
        self.wait(lambda d: all(name in self.actor_names() for name in names), f"the actors {names}")

    def cell(self, actor, cell):
        return self.text(f'#actors tr[data-actor="{actor}"] td[data-cell="{cell}"]')

    def type_into(self, selector, text):
        field = self.find(selector)
        field.clear()
        if text:
            field.send_keys(text)
        return field

    def set_token(self, token):
        self.type_into("#token", token)

    def submit(self, route, payload, headers=""):
        self.followed = self.text("#follow-id")
        self.type_into("#route", route)
        self.type_into("#payload", payload)
        self.type_into("#headers", headers)
        # Submitted from the keyboard: focus on the button, Enter.
        self.find("#submit-button").send_keys(Keys.ENTER)

    def wait_for_end(self, status):
        self.wait(
            lambda d: self.text("#follow-id") not in ("", self.followed)
            and self.find("#follow-status").get_attribute("data-state") in ("succeeded", "failed"),
            "the followed envelope's end",
        )
        shown = self.find("#follow-status").get_attribute("data-state")
        assert shown == status, f"the envelope ended {shown}, not {status}: {self.text('#follow')}"
        return self.find("#follow-id").text

    def hops(self):
        return [
            {
                "actor": hop.get_attribute("data-actor"),
                "stage": hop.get_attribute("data-stage"),
                "text": hop.text,
            }
            for hop in self.all("#hops .hop")
        ]

    def wait_for_samples(self, actor):
        # One activity sample (taken every 5 s) drawn as a bar.
        self.wait(
            lambda d: len(self.all(f'#actors tr[data-actor="{actor}"] .spark rect')) > 0,
            f"a throughput sample for {actor}",
            timeout=20,
        )


def overview(page, _arg):
    page.open()
    page.wait_for_actors(["echo", "upper", "split", "fail"])
    step("listed", actors=page.actor_names(), ready=page.text("#readiness"))

    # Without the token a submission is refused, in the API's own words.
    page.set_token("")
    page.submit("echo upper", '{"text": "hello wasya"}')
    page.wait(lambda d: "Bearer" in page.text("#submit-error"), "the API's 401 message")
    step("refused", error=page.text("#submit-error"))
    page.shot("01-token-needed")

    page.set_token(TOKEN)
    page.submit("echo upper", '{"text": "hello wasya"}', '{"trace": "ui"}')
    id = page.wait_for_end("succeeded")
    page.wait(lambda d: "HELLO WASYA" in page.text("#follow-result"), "the result")
    step("succeeded", id=id, hops=page.hops(), result=page.text("#follow-result"))
    page.shot("02-succeeded")

    # A fan-out: split makes one envelope per word, each followed to its end.
    page.submit("split echo", '{"text": "one two three"}')
    id = page.wait_for_end("succeeded")
    step("fanned-out", id=id, hops=page.hops(), result=page.text("#follow-result"))
    page.shot("03-fan-out")

    # The traffic the test sent drawn as throughput sparklines.
    page.wait_for_samples("echo")
    page.wait(lambda d: page.cell("echo", "processed") not in ("", "0"), "echo's processed count")
    step(
        "overview",
        echo_processed=page.cell("echo", "processed"),
        echo_saturation=page.cell("echo", "saturation"),
        echo_queue=page.cell("echo", "queue"),
        echo_version=page.cell("echo", "version"),
        echo_limits=page.cell("echo", "limits"),
        fail_failed=page.cell("fail", "failed"),
    )
    page.shot("04-overview")


def failure(page, _arg):
    page.open()
    page.set_token(TOKEN)
    page.submit("echo fail", '{"reason": "on purpose"}')
    id = page.wait_for_end("failed")
    page.wait(lambda d: page.all(f'#failures li[data-id="{id}"]'), "the failure in the failures list")
    item = page.find(f'#failures li[data-id="{id}"]')
    step(
        "failed",
        id=id,
        first_failure=page.find("#failures li").get_attribute("data-id"),
        type=item.find_element(By.CSS_SELECTOR, ".type").text,
        message=item.find_element(By.CSS_SELECTOR, ".message").text,
        hops=page.hops(),
    )
    page.shot("05-failure")


def upload(page, component):
    page.open()
    page.set_token(TOKEN)
    page.find("#deploy-file").send_keys(component)
    # The name is suggested from the file; the operator picks another.
    page.wait(lambda d: page.find("#deploy-name").get_attribute("value") != "", "a suggested name")
    suggested = page.find("#deploy-name").get_attribute("value")
    page.type_into("#deploy-name", "shout")
    page.find("#deploy-button").send_keys(Keys.ENTER)
    page.wait(lambda d: "deployed shout version 1" in page.text("#deploy-status"), "the deploy's answer")
    page.wait_for_actors(["shout"])
    page.wait(lambda d: page.cell("shout", "version").startswith("v1"), "shout's version")
    step(
        "deployed",
        suggested=suggested,
        status=page.text("#deploy-status"),
        progress=page.find("#deploy-progress").get_attribute("value"),
        version=page.cell("shout", "version"),
    )
    page.shot("06-uploaded")

    # A name the API refuses: its error, as the API words it.
    page.type_into("#deploy-name", "Not-A-Name")
    page.find("#deploy-button").send_keys(Keys.ENTER)
    page.wait(lambda d: "invalid_name" in page.text("#deploy-status"), "the API's invalid_name error")
    step("refused", status=page.text("#deploy-status"))

    # Removed: asked twice, then gone from the list.
    remove = page.find('#actors tr[data-actor="shout"] button.danger')
    remove.send_keys(Keys.ENTER)
    page.wait(lambda d: "armed" in remove.get_attribute("class"), "the remove confirmation")
    remove.send_keys(Keys.ENTER)
    page.wait(lambda d: "shout" not in page.actor_names(), "shout gone from the list")
    step("removed", actors=page.actor_names())


def restart(page, _arg):
    page.open()
    step("loaded")
    page.wait(lambda d: page.find("#unreachable").is_displayed(), "the unreachable banner", timeout=60)
    step("unreachable", banner=page.text("#unreachable"), readiness=page.text("#readiness"))
    page.shot("07-unreachable", full=False)
    page.wait(lambda d: not page.find("#unreachable").is_displayed(), "the banner gone", timeout=90)
    page.wait_for_actors(["echo"])
    page.wait(lambda d: page.text("#readiness") == "ready", "the node ready again")
    step("reconnected", actors=page.actor_names())


def phone(page, _arg):
    page.open()
    width = page.driver.execute_script("return document.documentElement.scrollWidth")
    inner = page.driver.execute_script("return window.innerWidth")
    step("phone", scroll_width=width, window_width=inner)
    page.shot("08-phone")


ATTACK_PAGE = """<!doctype html>
<html><body><p id="state">attacking</p><script>
const NODE = %s;
const envelope = '{"id":"csrf-1","route":{"actors":["echo"],"current":0},"payload":{}}';
window.attackResults = [];
async function attempt(path, init) {
  try {
    const answer = await fetch(NODE + path, init);
    window.attackResults.push(answer.type + " " + answer.status);
  } catch (error) {
    window.attackResults.push("error " + error);
  }
}
async function attack() {
  // What a page may send anywhere without a CORS preflight.
  await attempt("/v1/queues/echo/messages",
    {method: "POST", mode: "no-cors", headers: {"Content-Type": "text/plain"}, body: envelope});
  await attempt("/v1/envelopes",
    {method: "POST", mode: "no-cors", headers: {"Content-Type": "text/plain"},
     body: '{"route": ["echo"], "payload": {"csrf": 2}}'});
  const form = new FormData();
  form.append("payload", envelope);
  await attempt("/v1/queues/echo/messages", {method: "POST", mode: "no-cors", body: form});
  // JSON needs a preflight, which the node never grants.
  await attempt("/v1/queues/echo/messages",
    {method: "POST", mode: "cors", headers: {"Content-Type": "application/json"}, body: envelope});
  document.getElementById("state").textContent = "done";
  window.attackDone = true;
}
attack();
</script></body></html>
"""


def cross_site(page, _arg):
    """A page of another site (localhost, another port) sends the node what a browser
    sends cross-site without asking; the test then checks nothing reached a queue."""
    import http.server
    import threading

    body = (ATTACK_PAGE % json.dumps(page.base)).encode()

    class Attacker(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *_args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Attacker)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    origin = f"http://localhost:{server.server_address[1]}"
    try:
        page.driver.get(origin + "/attack")
        page.wait(
            lambda driver: driver.execute_script("return window.attackDone === true"),
            "the attacking page's requests",
        )
        page.shot("cross-site", full=False)
        step(
            "attacked",
            origin=origin,
            results=page.driver.execute_script("return window.attackResults"),
        )
    finally:
        server.shutdown()


SCENARIOS = {
    "overview": (overview, (1440, 900)),
    "failure": (failure, (1440, 900)),
    "upload": (upload, (1440, 900)),
    "restart": (restart, (1280, 720)),
    "phone": (phone, (390, 844)),
    "cross_site": (cross_site, (1280, 720)),
}


def main():
    # Stopped by the test (SIGTERM): unwind, so the browser is closed too.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    scenario, base, shots = sys.argv[1:4]
    arg = sys.argv[4] if len(sys.argv) > 4 else None
    run, (width, height) = SCENARIOS[scenario]
    driver = browser(width, height)
    page = Page(driver, base.rstrip("/"), shots)
    try:
        run(page, arg)
    except BaseException:
        try:
            page.shot("failed-" + scenario, full=False)
            print("---- page text ----\n" + driver.find_element(By.TAG_NAME, "body").text, file=sys.stderr)
            for entry in driver.get_log("browser"):
                print("console:", entry, file=sys.stderr)
        except Exception as error:  # the browser itself may be gone
            print("no screenshot of the failure:", error, file=sys.stderr)
        raise
    finally:
        driver.quit()


if __name__ == "__main__":
    main()
