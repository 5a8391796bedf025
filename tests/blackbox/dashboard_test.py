# SPDX-License-Identifier: MIT
"""The status page under the article's load, read by a real browser.

A server gets the article's pipeline through the aws CLI; `changepipe load` writes 200
BatchWriteItem requests/s for 8 s while headless Chromium (Debian's `chromium`) shows GET /.
The test reads the page's DOM over the DevTools protocol and checks that the charts show the
live numbers: the writes chart's requests/s is near the offered rate and agrees with what
/status.json says for the same interval, the delivery stream's charts exist and show 100%
success, and the numbers move between snapshots. After a drain the S3 chart shows the objects.

The browser is driven over --remote-debugging-pipe (JSON messages ending in NUL on fds 3 and
4): real time, so the page's one-second polling runs as it does for a person, with no port and
no websocket code. A MutationObserver installed before the page's own script records every
value each series displays, so a value shown for a single tick is not missed between polls.

Without Chromium the test is skipped, unless CP_REQUIRE_CHROMIUM=1 (CI), where it fails.
"""
import datetime
import fcntl
import json
import os
import shutil
import subprocess
import tempfile
import threading
import time
import unittest
import urllib.request

from harness import BINARY, ServerTestCase, main, wait_for

CHROMIUM = os.environ.get("CP_CHROMIUM", "/usr/bin/chromium")
REQUIRE_CHROMIUM = os.environ.get("CP_REQUIRE_CHROMIUM") == "1"
RATE = 200          # offered BatchWriteItem requests per second
ITEMS = 25          # items per request (the load generator's fixed batch)
DURATION_S = 8
STREAM = "chat-by-livestream"

# Installed before the page's script: every value each data-series element shows, in order
# (consecutive repeats folded), and every "updated" time, so the test can see what the page
# displayed between two polls and which interval a rate covers.
OBSERVER = r"""
window.__cpSeen = {};
new MutationObserver(() => {
  const note = (k, v) => {
    const h = window.__cpSeen[k] || (window.__cpSeen[k] = []);
    if (h[h.length - 1] !== v) h.push(v);
  };
  document.querySelectorAll('[data-series]').forEach(e => note(e.dataset.series, e.textContent));
  const u = document.getElementById('updated');
  if (u && u.textContent) note('#updated', u.textContent);
}).observe(document, {subtree: true, childList: true, characterData: true});
"""

# One snapshot of the page: the text of every series, the cards, the "updated" time, and per
# canvas the count of coloured pixels above the x axis (a series line drawn at a value > 0;
# axis and labels are grey) with a checksum of the pixels to tell two drawings apart.
SNAPSHOT = r"""
(() => {
  const values = {};
  document.querySelectorAll('[data-series]').forEach(e => values[e.dataset.series] = e.textContent);
  const canvases = {};
  document.querySelectorAll('.card').forEach(c => {
    const cv = c.querySelector('canvas');
    if (!cv) return;
    const d = cv.getContext('2d').getImageData(0, 0, cv.width, cv.height).data;
    let lifted = 0, sum = 0;
    for (let i = 0; i < d.length; i += 4) {
      const r = d[i], g = d[i + 1], b = d[i + 2], a = d[i + 3];
      sum = (sum * 31 + r + 7 * g + 13 * b + 17 * a) % 2147483647;
      const row = Math.floor(i / 4 / cv.width);
      if (a > 0 && Math.max(r, g, b) - Math.min(r, g, b) > 40 && row < 290) lifted++;
    }
    canvases[c.id] = {lifted: lifted, sum: sum};
  });
  const u = document.getElementById('updated');
  return {values: values, cards: [...document.querySelectorAll('.card')].map(c => c.id),
          updated: u ? u.textContent : '', canvases: canvases, seen: window.__cpSeen || {}};
})()
"""


def chromium_missing():
    if os.access(CHROMIUM, os.X_OK):
        return None
    return (f"{CHROMIUM} not found: install Debian's chromium (scripts/install-deps.sh) or set "
            "CP_CHROMIUM; CP_REQUIRE_CHROMIUM=1 turns this skip into a failure")


def number(text):
    """A series' text as a float ("199.8", "100%"); None for the placeholder "-"."""
    try:
        return float(text.rstrip("%"))
    except (AttributeError, ValueError):
        return None


def iso_ms(text):
    """The page's "updated" text (Date.toISOString) as milliseconds since the epoch."""
    t = datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))
    return round(t.timestamp() * 1000)


class Browser:
    """Headless Chromium and a minimal DevTools protocol client over --remote-debugging-pipe."""

    def __init__(self, binary, log_dir):
        self.profile = tempfile.mkdtemp(prefix="cp-chromium-")
        self.log_path = os.path.join(log_dir, "chromium.log")
        cmd_r, self._cmd_w = os.pipe()
        self._ev_r, ev_w = os.pipe()
        # Chromium reads commands on fd 3 and writes on fd 4. Move our ends above any fd the
        # redirections below could clobber, then let bash (dash takes only fds 0-9) place them.
        child = [fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 10) for fd in (cmd_r, ev_w)]
        os.close(cmd_r)
        os.close(ev_w)
        args = [binary, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                "--no-first-run", "--disable-background-networking",
                "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage",
                "--disable-extensions", "--mute-audio", "--remote-debugging-pipe",
                f"--user-data-dir={self.profile}", "about:blank"]
        self._log = open(self.log_path, "ab")
        try:
            self.proc = subprocess.Popen(
                ["/bin/bash", "-c", 'exec "$@" 3<&%d 4>&%d %d<&- %d>&-' % (*child, *child),
                 "bash", *args],
                pass_fds=child, stdin=subprocess.DEVNULL, stdout=self._log,
                stderr=subprocess.STDOUT)
        finally:
            for fd in child:
                os.close(fd)
        self._cv = threading.Condition()
        self._replies = {}
        self._next_id = 0
        self._eof = False
        self._reader = threading.Thread(target=self._read_loop, daemon=True)
        self._reader.start()
        self.session = None

    def _read_loop(self):
        pending = b""
        while True:
            try:
                chunk = os.read(self._ev_r, 1 << 16)
            except OSError:
                chunk = b""
            if not chunk:
                break
            pending += chunk
            while b"\0" in pending:
                raw, pending = pending.split(b"\0", 1)
                msg = json.loads(raw)
                if "id" in msg:  # events (no id) are not needed: the test polls the DOM
                    with self._cv:
                        self._replies[msg["id"]] = msg
                        self._cv.notify_all()
        with self._cv:
            self._eof = True
            self._cv.notify_all()

    def read_log(self):
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode("utf-8", "replace")[-8000:]
        except OSError:
            return ""

    def call(self, method, params=None, session=True, timeout=60.0):
        with self._cv:
            self._next_id += 1
            mid = self._next_id
        msg = {"id": mid, "method": method, "params": params or {}}
        if session and self.session:
            msg["sessionId"] = self.session
        data = json.dumps(msg).encode() + b"\0"
        while data:
            data = data[os.write(self._cmd_w, data):]
        deadline = time.monotonic() + timeout
        with self._cv:
            while mid not in self._replies:
                left = deadline - time.monotonic()
                if self._eof or left <= 0:
                    why = "closed the pipe" if self._eof else f"did not answer in {timeout}s"
                    raise AssertionError(f"chromium {why} ({method}):\n{self.read_log()}")
                self._cv.wait(left)
            reply = self._replies.pop(mid)
        if "error" in reply:
            raise AssertionError(f"{method} failed: {reply['error']}")
        return reply.get("result", {})

    def open(self, url):
        """A new tab on url, with the observer installed before the page's own script."""
        target = self.call("Target.createTarget", {"url": "about:blank"}, session=False)
        self.session = self.call("Target.attachToTarget",
                                 {"targetId": target["targetId"], "flatten": True},
                                 session=False)["sessionId"]
        self.call("Page.enable")
        self.call("Page.addScriptToEvaluateOnNewDocument", {"source": OBSERVER})
        nav = self.call("Page.navigate", {"url": url})
        if nav.get("errorText"):
            raise AssertionError(f"navigating to {url}: {nav['errorText']}")

    def evaluate(self, expression):
        res = self.call("Runtime.evaluate", {"expression": expression, "returnByValue": True})
        if "exceptionDetails" in res:
            raise AssertionError(f"page script failed: {res['exceptionDetails']}")
        return res["result"].get("value")

    def close(self):
        if self.proc.poll() is None:
            try:
                self.call("Browser.close", session=False, timeout=10)
            except AssertionError:
                pass
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        os.close(self._cmd_w)
        self._reader.join(10)
        os.close(self._ev_r)
        self._log.close()
        shutil.rmtree(self.profile, ignore_errors=True)


class StatusSampler:
    """Polls /status.json in the background; the reference the page's rates are checked against."""

    def __init__(self, server):
        self.server = server
        self.samples = []  # (time_ms, BatchWriteItem count, {stream: records read})
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self):
        while not self._stop.is_set():
            try:
                s = json.loads(self.server.get("/status.json")[1])
                bw = next((o["count"] for o in s["ops"] if o["op"] == "dynamodb.BatchWriteItem"),
                          0)
                read = {d["name"]: d["read"] for d in s.get("delivery", [])}
                self.samples.append((s["time_ms"], bw, read))
            except Exception:  # noqa: BLE001 - a slow answer just leaves a gap
                pass
            self._stop.wait(0.02)

    def stop(self):
        self._stop.set()
        self._thread.join(30)

    def bounds(self, t_ms, pick):
        """Bounds of a counter at t_ms: its values in the last sample before and the first
        sample after (counters only grow; a slow answer only widens the bounds). None until
        samples bracket t_ms."""
        samples = list(self.samples)
        for (t0, *a), (t1, *b) in zip(samples, samples[1:]):
            if t0 <= t_ms <= t1:
                return pick(a), pick(b)
        return None

    def rate_bounds(self, from_ms, to_ms, pick):
        """The lowest and highest rate the counter can have had over [from_ms, to_ms]."""
        a, b = self.bounds(from_ms, pick), self.bounds(to_ms, pick)
        if a is None or b is None or to_ms <= from_ms:
            return None
        return ((b[0] - a[1]) * 1000.0 / (to_ms - from_ms),
                (b[1] - a[0]) * 1000.0 / (to_ms - from_ms))


def by_livestream_config(stream_arn, bucket_arn):
    """The article's by-livestream delivery stream, as src/cli/demo.c creates it."""
    role = "arn:aws:iam::000000000000:role/firehose"
    return {
        "DeliveryStreamName": STREAM,
        "DeliveryStreamType": "KinesisStreamAsSource",
        "KinesisStreamSourceConfiguration": {"KinesisStreamARN": stream_arn, "RoleARN": role},
        "ExtendedS3DestinationConfiguration": {
            "RoleARN": role,
            "BucketARN": bucket_arn,
            "Prefix": "Livestreams/LivestreamID=!{partitionKeyFromLambda:LivestreamID}/",
            "ErrorOutputPrefix": "errors/!{firehose:error-output-type}/",
            "BufferingHints": {"SizeInMBs": 64, "IntervalInSeconds": 60},
            "ProcessingConfiguration": {"Enabled": True, "Processors": [{
                "Type": "DynamoDBChangeRecord",
                "Parameters": [{"ParameterName": "PartitionKeyAttributes",
                                "ParameterValue": "LivestreamID"}]}]},
            "DynamicPartitioningConfiguration": {"Enabled": True,
                                                 "RetryOptions": {"DurationInSeconds": 300}},
        },
    }


class DashboardUnderLoad(ServerTestCase):
    @classmethod
    def setUpClass(cls):
        missing = chromium_missing()
        if missing:
            if REQUIRE_CHROMIUM:
                raise AssertionError(missing)
            raise unittest.SkipTest(missing)
        super().setUpClass()

    def setUp(self):
        self.browser = None
        self.sampler = None
        self.load = None
        self.tmp = tempfile.mkdtemp(prefix="cp-dash-")

    def tearDown(self):
        if self.load and self.load.poll() is None:
            self.load.kill()
            self.load.wait()
        if self.sampler:
            self.sampler.stop()
        if self.browser:
            self.browser.close()
        shutil.rmtree(self.tmp, ignore_errors=True)

    def create_pipeline(self):
        aws = self.aws
        aws.ok("s3api", "create-bucket", "--bucket", "chat-bucket")
        aws.ok("kinesis", "create-stream", "--stream-name", "chat-cdc",
               "--stream-mode-details", "StreamMode=ON_DEMAND")
        arn = aws.ok("kinesis", "describe-stream-summary", "--stream-name",
                     "chat-cdc")["StreamDescriptionSummary"]["StreamARN"]
        aws.ok("dynamodb", "create-table", "--table-name", "ChatMessages",
               "--attribute-definitions", "AttributeName=LivestreamID,AttributeType=S",
               "AttributeName=UID,AttributeType=N",
               "--key-schema", "AttributeName=LivestreamID,KeyType=HASH",
               "AttributeName=UID,KeyType=RANGE", "--billing-mode", "PAY_PER_REQUEST")
        aws.ok("dynamodb", "enable-kinesis-streaming-destination", "--table-name",
               "ChatMessages", "--stream-arn", arn)
        path = os.path.join(self.tmp, "delivery.json")
        with open(path, "w") as f:
            json.dump(by_livestream_config(arn, "arn:aws:s3:::chat-bucket"), f)
        aws.ok("firehose", "create-delivery-stream", "--cli-input-json", f"file://{path}")
        wait_for(lambda: aws.ok("firehose", "describe-delivery-stream",
                                "--delivery-stream-name", STREAM)
                 ["DeliveryStreamDescription"]["DeliveryStreamStatus"] == "ACTIVE",
                 timeout=60, interval=0.5, what="the delivery stream to become ACTIVE")

    def snapshot(self):
        return self.browser.evaluate(SNAPSHOT)

    def next_snapshot(self, after, what, check=lambda s: True, timeout=60):
        """The first snapshot showing a newer tick than `after` (a snapshot) that passes check."""
        def newer():
            s = self.snapshot()
            if s["updated"] and (after is None or iso_ms(s["updated"]) > iso_ms(after["updated"])):
                return s if check(s) else None
            return None
        return wait_for(newer, timeout=timeout, interval=0.1, what=what)

    def interval_of(self, snap):
        """The [previous, this] tick times the snapshot's rates cover."""
        ticks = [iso_ms(t) for t in snap["seen"].get("#updated", [])]
        end = iso_ms(snap["updated"])
        self.assertIn(end, ticks)
        i = ticks.index(end)
        self.assertGreater(i, 0, "a rate needs two ticks")
        return ticks[i - 1], end

    def assert_rate_matches_status(self, snap, series, pick, what, slack_units):
        """The page's rate for series is one /status.json allows over the same interval: the
        sampler's documents just before and after each end bound the counter there."""
        shown = number(snap["values"].get(series))
        self.assertIsNotNone(shown, f"{series} shows no number: {snap['values']}")
        start, end = self.interval_of(snap)
        low, high = wait_for(lambda: self.sampler.rate_bounds(start, end, pick), timeout=30,
                             what=f"/status.json samples around {start}..{end}")
        # Slack: the page rounds to 0.01, and a document's counters are read just after its
        # time is taken, so a sample stamped a moment earlier may already hold a few more
        # (slack_units: a few requests, or a few reads' worth of records).
        slack = 0.01 + slack_units * 1000.0 / (end - start)
        self.assertTrue(low - slack <= shown <= high + slack,
                        f"page shows {what} {shown}; /status.json sampled independently puts it "
                        f"in [{low:.1f}, {high:.1f}] over the same {end - start} ms")
        return shown

    def test_charts_show_live_numbers(self):
        self.create_pipeline()
        self.sampler = StatusSampler(self.server)
        self.browser = Browser(CHROMIUM, self.tmp)
        self.browser.open(self.server.endpoint + "/")

        # The page polls before the load starts: a first tick, then zero rates.
        idle = self.next_snapshot(None, "the page's first rates",
                                  lambda s: "writes.requests/s" in s["values"], timeout=120)
        self.assertEqual(number(idle["values"]["writes.requests/s"]), 0.0, idle["values"])

        with open(os.path.join(self.tmp, "load.out"), "wb") as out:
            self.load = subprocess.Popen(
                [BINARY, "load", "--endpoint", self.server.endpoint, "--rate", str(RATE),
                 "--duration", f"{DURATION_S}s", "--quiet"], stdout=out, stderr=subprocess.STDOUT)

        def busy(s):
            return (number(s["values"].get("writes.requests/s")) or 0) > 0

        # Skip the tick in which the load started (a partial second), then take two snapshots
        # of full seconds of load, one tick apart at least.
        first = self.next_snapshot(idle, "the writes chart to show requests", busy)
        snaps = [self.next_snapshot(first, "a full second of load", busy)]
        snaps.append(self.next_snapshot(snaps[0], "another second of load", busy))
        self.assertIsNone(self.load.poll(), "the load ended before the snapshots were taken; "
                          "the machine is too slow for this test's timing")

        bw = lambda sample: sample[0]  # noqa: E731
        read = lambda sample: sample[1].get(STREAM, 0)  # noqa: E731
        shown = []
        for s in snaps:
            v = s["values"]
            shown.append(self.assert_rate_matches_status(s, "writes.requests/s", bw,
                                                         "BatchWriteItem requests/s", 5))
            self.assertEqual(v["writes.success %"], "100%", v)
            self.assertEqual(v["writes.throttled/s"], "0", v)
            # The delivery stream's three charts exist, fed by the change records.
            for chart in ("src", "xf", "s3"):
                self.assertIn(f"card-{chart}-{STREAM}", s["cards"])
                self.assertEqual(v[f"{chart}-{STREAM}.success %"], "100%", v)
            recs = self.assert_rate_matches_status(s, f"src-{STREAM}.records/s", read,
                                                   "records read/s", 500)
            self.assertGreater(recs, 0, v)
            self.assertEqual(v[f"xf-{STREAM}.records/s"], v[f"src-{STREAM}.records/s"], v)
            self.assertEqual(v[f"xf-{STREAM}.retries/s"], "0", v)
            # The writes chart's lines are drawn above the axis, not only the legend text.
            self.assertGreater(s["canvases"]["card-writes"]["lifted"], 0, s["canvases"])
        # Close to the offered rate: the best of the two seconds within 30% (one second of a
        # loaded 2-core machine can lag; the load catches up on its schedule), both above half.
        history = snaps[-1]["seen"].get("writes.requests/s")
        self.assertLessEqual(min(abs(x - RATE) for x in shown), 0.3 * RATE, history)
        self.assertGreater(min(shown), 0.5 * RATE, history)
        # Live: a newer tick with different numbers and a different drawing.
        a, b = snaps
        self.assertGreater(iso_ms(b["updated"]), iso_ms(a["updated"]))
        self.assertNotEqual(a["canvases"]["card-writes"]["sum"],
                            b["canvases"]["card-writes"]["sum"])
        moving = [k for k in a["values"] if k.endswith("/s") and a["values"][k] !=
                  b["values"].get(k)]
        self.assertTrue(moving, f"no rate changed between ticks: {a['values']}")

        # The load ends cleanly; the rates fall back to zero on the page.
        code = self.load.wait(120)
        with open(os.path.join(self.tmp, "load.out"), errors="replace") as f:
            self.assertEqual(code, 0, f"changepipe load failed:\n{f.read()}")
        self.next_snapshot(snaps[-1], "the writes rate to return to 0",
                           lambda s: number(s["values"]["writes.requests/s"]) == 0.0)

        # Flush the 60 s buffers: the S3 chart shows the objects for one tick, at 100%.
        req = urllib.request.Request(self.server.endpoint + "/changepipe/v1/drain", data=b"",
                                     method="POST")
        with urllib.request.urlopen(req, timeout=330) as r:
            self.assertEqual(json.loads(r.read()), {"drained": True})
        status = json.loads(self.server.get("/status.json")[1])
        d = next(x for x in status["delivery"] if x["name"] == STREAM)
        self.assertGreater(d["delivered"], 0, d)
        self.assertEqual((d["delivered"], d["errored"], d["buffered"]), (d["read"], 0, 0), d)

        def delivered_shown(s):
            seen = s["seen"]
            recs = [number(x) for x in seen.get(f"s3-{STREAM}.records/s", [])]
            objs = [number(x) for x in seen.get(f"s3-{STREAM}.objects/s", [])]
            return any(x and x > 0 for x in recs) and any(x and x > 0 for x in objs)

        s = wait_for(lambda: (lambda s: s if delivered_shown(s) else None)(self.snapshot()),
                     timeout=60, interval=0.2, what="the S3 chart to show delivered records")
        self.assertEqual(set(s["seen"][f"s3-{STREAM}.success %"]), {"100%"}, s["seen"])
        self.assertEqual(set(s["seen"][f"src-{STREAM}.success %"]), {"100%"}, s["seen"])
        self.assertEqual(set(s["seen"]["writes.success %"]), {"100%"}, s["seen"])


if __name__ == "__main__":
    main()
