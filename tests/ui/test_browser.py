"""The dashboard in a real browser: Debian's headless Chromium driven by Playwright.

Every page renders without a console error (a Content-Security-Policy violation is one), hostile
strings stay inert, a proposal goes through its whole life from the pages, the audit page shows a
tampered stored update, the live view shows a new round without a reload, and the demo loads.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from codecoop.storage import LocalStore
from codecoop.ui.app import create_app
from codecoop.ui.dashboard import Dashboard
from codecoop.ui.serve import CHROMIUM_ARGS, BackgroundServer

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
pytestmark = [
    pytest.mark.slow,
    pytest.mark.browser,
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="needs Debian's chromium (scripts/bootstrap.sh installs it)"),
]

PAGES = ["/", "/rounds", "/rounds/1", "/rounds/2", "/members", "/proposals", "/models", "/audit", "/node"]
#: Bounded waits in the browser (ms).
WAIT_MS = 20_000


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield b
        b.close()


class Watched:
    """A page that records console errors, uncaught exceptions and failed requests."""

    def __init__(self, browser):
        self.page = browser.new_page(viewport={"width": 1300, "height": 900})
        self.problems: list[str] = []
        self.page.on("console", lambda m: self.problems.append(f"console {m.type}: {m.text}") if m.type == "error" else None)
        self.page.on("pageerror", lambda e: self.problems.append(f"uncaught: {e}"))
        self.page.on("requestfailed", self._failed)

    def _failed(self, request) -> None:
        # leaving a page aborts its event stream and any live refresh still in flight: not a problem
        if request.failure != "net::ERR_ABORTED":
            self.problems.append(f"failed: {request.url} ({request.failure})")

    def open(self, url: str) -> None:
        self.page.goto(url)
        # selectors only: a waited-for function would be evaluated as a string, which the page's CSP forbids
        self.page.wait_for_selector("#live-dot.on", state="attached", timeout=WAIT_MS)

    def close(self) -> None:
        self.page.close()


@pytest.fixture
def chain_state(recorded):
    """Roll the recorded chain back after the test."""
    snapshot = recorded.fed.chain.snapshot()
    yield
    recorded.fed.chain.revert_to(snapshot)


def _serve(recorded, signer=None, store=None):
    db = Dashboard(recorded.fed.deployment, store=store or recorded.store, signer=signer, poll=0.2).start()
    return db, BackgroundServer(create_app(db)).start()


def test_every_page_renders_without_console_errors_and_hostile_strings_stay_inert(browser, recorded):
    db, server = _serve(recorded, signer=recorded.fed.members[0])
    page = Watched(browser)
    try:
        for path in [*PAGES, f"/proposals/{recorded.xss_proposal}"]:
            page.open(server.url + path)
            assert page.page.evaluate("window.__pwned") is None, path
        page.open(server.url + "/")
        assert page.page.locator("#loss-chart").is_visible(), "Chart.js drew the loss curve"
        # the payload is shown as text on the proposal's page
        page.open(server.url + f"/proposals/{recorded.xss_proposal}")
        assert "<script>window.__pwned = 1</script>" in page.page.locator("#description").inner_text()
        # tables sort and filter in the page
        page.open(server.url + "/members")
        page.page.fill("input[data-filter-for=members]", "svg")
        assert page.page.locator("#members tbody tr:visible").count() == 1
        assert page.problems == [], page.problems
    finally:
        page.close()
        server.stop()
        db.stop()


def test_a_proposal_goes_through_its_whole_life_from_the_pages(browser, recorded, chain_state):
    fed, d = recorded.fed, recorded.fed.deployment
    assert d.rounds.params().quorum_bps == 7500
    first, second = _serve(recorded, signer=fed.members[0]), _serve(recorded, signer=fed.members[1])
    a, b = Watched(browser), Watched(browser)
    try:
        a.open(first[1].url + "/proposals")
        a.page.select_option("#new-param select[name=name]", "quorum")
        a.page.fill("#new-param input[name=value]", "6000")
        a.page.fill("#new-param textarea[name=description]", "Lower the quorum to 60% (from the dashboard)")
        a.page.click("#new-param button")
        a.page.wait_for_selector("#proposal-state", timeout=WAIT_MS)
        assert "proposal" in a.page.locator(".banner.ok").inner_text() and "set quorum to 60%" in a.page.locator("#actions").inner_text()
        url = a.page.url.split("?")[0]
        pid = int(url.rsplit("/", 1)[1])
        fed.chain.mine(d.params.voting_delay + 1)
        for page, why in ((a, "fewer approvals needed"), (b, "agreed")):
            page.open(url.replace(first[1].url, (first if page is a else second)[1].url))
            page.page.wait_for_selector("#vote-form", timeout=WAIT_MS)
            page.page.check("#vote-form input[value=for]")
            page.page.fill("#vote-form textarea[name=reason]", why)
            page.page.click("#vote-form button")
            page.page.wait_for_selector(".banner.ok", timeout=WAIT_MS)
        assert sorted(d.governor.votes(pid)) != [0, 0, 0]
        fed.chain.mine_to(d.governor.deadline(pid) + 1)
        a.open(url)
        a.page.click("#queue-form button")
        a.page.wait_for_selector("#execute-form", timeout=WAIT_MS)
        fed.chain.time_travel(d.params.timelock_delay + 1)
        a.open(url)
        a.page.click("#execute-form button")
        a.page.wait_for_selector("#proposal-state:has-text('executed')", timeout=WAIT_MS)
        assert d.rounds.params().quorum_bps == 6000
        assert "agreed" in a.page.locator("#voters").inner_text()
        assert a.problems == [] and b.problems == [], a.problems + b.problems
    finally:
        for page in (a, b):
            page.close()
        for db, server in (first, second):
            server.stop()
            db.stop()


def test_the_audit_page_shows_the_finding_of_a_tampered_stored_update(browser, recorded, tmp_path):
    root = tmp_path / "store"
    shutil.copytree(recorded.root, root)
    cid = recorded.fed.deployment.rounds.update(1, 0).cid
    obj = root / "objects" / cid[-2:] / cid
    data = bytearray(obj.read_bytes())
    data[-1] ^= 0x01
    obj.write_bytes(bytes(data))
    db, server = _serve(recorded, store=LocalStore(root))
    page = Watched(browser)
    try:
        page.open(server.url + "/audit")
        page.page.check("#audit-form input[name=recompute]")
        page.page.click("#audit-form button")
        page.page.wait_for_selector("#audit-verdict", timeout=120_000)
        assert "1 finding(s)" in page.page.locator("#audit-verdict").inner_text()
        findings = page.page.locator("#findings").inner_text()
        assert "tampered-object" in findings and cid in findings
        assert page.page.locator(".plots img").count() >= 3
        assert page.problems == [], page.problems
    finally:
        page.close()
        server.stop()
        db.stop()


def test_the_live_view_shows_a_new_round_without_a_reload(browser, recorded, chain_state):
    db, server = _serve(recorded, signer=recorded.fed.members[0])
    page = Watched(browser)
    try:
        page.open(server.url + "/rounds")
        before = page.page.locator("#rounds tbody tr").count()
        page.page.evaluate("window.__same_page = true")
        recorded.sim.run_round()
        page.page.wait_for_selector(f"#rounds tbody tr:nth-child({before + 1})", state="attached", timeout=WAIT_MS)
        assert page.page.evaluate("window.__same_page") is True, "the page was not reloaded"
        page.page.wait_for_selector(f"#head:text-is('{recorded.fed.chain.block_number}')", timeout=WAIT_MS)  # the last block pushed too
        assert page.problems == [], page.problems
    finally:
        page.close()
        server.stop()
        db.stop()


def test_the_demo_federation_loads_and_every_page_renders(browser):
    from codecoop.ui.demo import DemoFederation

    with DemoFederation(rounds=2, orgs=3, steps=2, block_s=0.5, log=lambda m: None, accept_every_update=True) as demo:
        db = demo.start().start()
        server = BackgroundServer(create_app(db)).start()
        page = Watched(browser)
        try:
            page.open(server.url + "/")
            assert demo.done.wait(600), "the demo federation did not finish"
            assert demo.error is None, demo.error
            for path in ["/", "/rounds", "/rounds/1", "/rounds/2", "/members", "/proposals", "/models", "/audit", "/node"]:
                page.open(server.url + path)
            page.open(server.url + "/models")
            assert "v1" in page.page.locator("main").inner_text()
            page.open(server.url + "/proposals")
            text = page.page.locator("#proposals").inner_text()
            assert "set quorum to 60%" in text and "release v1" in text and "active" in text
            assert page.problems == [], page.problems
        finally:
            page.close()
            server.stop()
            db.stop()


class InjectedWallet:
    """What a browser wallet (EIP-1193 ``window.ethereum``) does for a page: it holds one account's key,
    connects when asked, and signs and sends the transactions the page requests. Injected into the page
    the way an extension injects its provider; the page cannot tell it from MetaMask's."""

    SCRIPT = (
        "window.ethereum = { isCodecoopTestWallet: true, on: () => {},"
        " request: ({ method, params }) => window.__wallet(method, params || []) };"
    )

    def __init__(self, chain, account):
        self.chain, self.account = chain, account
        self.connected = False
        self.sent: list[str] = []

    def install(self, page) -> None:
        page.expose_function("__wallet", self)
        page.add_init_script(self.SCRIPT)

    def __call__(self, method, params):
        me = self.account.address
        if method == "eth_accounts":
            return [me] if self.connected else []
        if method == "eth_requestAccounts":
            self.connected = True
            return [me]
        if method == "eth_chainId":
            return hex(self.chain.chain_id)
        if method == "eth_sendTransaction":
            (tx,) = params
            assert tx["from"].lower() == me.lower(), "the page asked to send from another account"
            w3 = self.chain.w3
            signed = self.account.sign_transaction(
                {
                    "to": tx["to"],
                    "data": tx["data"],
                    "value": int(tx.get("value", "0x0"), 16),
                    "chainId": self.chain.chain_id,
                    "nonce": w3.eth.get_transaction_count(me, "pending"),
                    "gas": 3_000_000,
                    "gasPrice": w3.eth.gas_price,
                }  # fmt: skip
            )
            tx_hash = w3.eth.send_raw_transaction(signed.raw_transaction).hex()
            tx_hash = tx_hash if tx_hash.startswith("0x") else "0x" + tx_hash
            self.sent.append(tx_hash)
            return tx_hash
        raise ValueError(f"this wallet does not implement {method}")


def test_a_browser_wallet_votes_through_eip_1193_and_a_vote_that_would_revert_never_reaches_it(browser, recorded, chain_state):
    from codecoop.governance import set_parameter

    fed, d = recorded.fed, recorded.fed.deployment
    change = set_parameter(d, [("confirmations", "2")], "Two confirmations (voted from a browser wallet)")
    pid = d.governor.propose(fed.members[0], list(change.calls), change.description)
    fed.chain.mine(d.params.voting_delay + 1)
    voter = fed.members[3]
    db, server = _serve(recorded)  # read-only: no keystore on the server
    page = Watched(browser)
    wallet = InjectedWallet(fed.chain, voter)
    wallet.install(page.page)
    try:
        page.open(server.url + f"/proposals/{pid}")
        assert page.page.locator("#vote-form button").is_disabled(), "nothing can sign before the wallet connects"
        page.page.click("#wallet-connect")
        page.page.wait_for_selector(f"#wallet-account:has-text('{voter.address}')", timeout=WAIT_MS)
        page.page.check("#vote-form input[value=for]")
        page.page.fill("#vote-form textarea[name=reason]", "from my wallet")
        page.page.click("#vote-form button")
        page.page.wait_for_selector(".banner.ok:has-text('signed by the browser wallet')", timeout=WAIT_MS)
        assert len(wallet.sent) == 1 and wallet.sent[0] in page.page.locator(".banner.ok").inner_text()
        assert d.governor.votes(pid)[1] > 0 and voter.address in db.ledger.proposals[pid].votes
        assert "from my wallet" in page.page.locator("#voters").inner_text()
        # the wallet stays connected across pages (eth_accounts); a second vote fails its dry run on the
        # server, so the wallet is never asked to sign it, and the page says why
        page.page.check("#vote-form input[value=against]")
        page.page.click("#vote-form button")
        page.page.wait_for_selector("#wallet-status.error", timeout=WAIT_MS)
        assert "AlreadyCastVote" in page.page.locator("#wallet-status").inner_text()
        assert len(wallet.sent) == 1
        assert page.problems == [], page.problems
    finally:
        page.close()
        server.stop()
        db.stop()
