"""Many pledges, cancellations, payments and program changes in random order: every instance
ends up agreeing on what each improvement is funded.

Four in-process instances (``tests/peers.py``): ``a.test`` holds two open improvements of its
commons and runs a small matching program of its own; ``b.test`` (a CAE federation) and
``d.test`` (a rogue instance) follow it and pledge; ``c.test`` runs a funder's program for
pledges made on a and b, and follows a at a random moment. A seeded ``random.Random`` picks
each step, doing what a page does (the change and its announcement in one transaction, then
the improvement's announcement); workers run only now and then, one instance at a time, so
activities pile up and arrive in bursts and out of step; an instance is now and then down for
a few steps (unreachable, its worker stopped), so deliveries to it wait for a retry and arrive
after newer ones. At the end every instance is up, time passes (retries and held activities
come due, as hours later) and everything is delivered. Then:

- a counts, for each improvement, its live pledges, its own matches and the latest amount of
  each of c's matches (read from the rows, not from the code under test), and says so in its
  Article; b, c and d show that amount;
- a's copy of each of c's matches says what c's match says, and c knows every pledge a
  accepted, with the status a has;
- c matches no contributor past the program's cap, nor past its budget, and never d.

A failure names the seed, lists the steps and what each instance could not apply, so the run
can be replayed. The seeds are ones that found a bug (fixed): 119 a copy showing an older
total (two Articles sent within a second, the older one retried later), 145 a funder that
followed while a pledging instance was down and never read that pledge back, 4242 a relay
refused for good because the pledging instance was down for a moment. Below the random run, a
test for each of those, and for pledges made on the commons' own instance, which a funder
following late did not read back.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import timedelta

import pytest
from peers import Peer, rows
from pledging_peers import (
    EN,
    Network,
    another_improvement_on,
    drain,
    follows,
    improvement_on,
    organisation,
    origin_funded,
    program_on,
    record_paid,
)
from sqlalchemy import delete, update
from sqlmodel import col, select

from catalogue import operations as ops
from catalogue.columns import utcnow
from catalogue.commons import Commons
from catalogue.errors import InvalidFields
from catalogue.improvements import Improvement
from federation.improvements_feed import publish_improvement_changes
from federation.models import Delivery, DeliveryState, FetchFailure, InboxItem, InboxState
from federation.pledges_feed import (
    inboxes_of,
    pledge_inboxes,
    publish_pledge,
    publish_pledge_status,
)
from pledges import operations as pledge_ops
from pledges.ledger import match_uri
from pledges.models import (
    LIVE_STATUSES,
    LedgerEntry,
    Match,
    MatchingProgram,
    Pledge,
    PledgeStatus,
    RemoteMatch,
)

SEEDS = [119, 145, 4242]
STEPS = 36
#: Who pledges: (instance index in the network, organisation slug, its kind).
GIVERS = [(0, "lieu", "tiers-lieu"), (0, "atelier", "tiers-lieu"), (1, "oxalis", "cae"),
          (1, "coop-b", "cae"), (3, "rogue", "tiers-lieu")]  # fmt: skip
#: c's program changes between these (cap per contributor, budget), in euros ("" no cap).
CAPS = ["100", "300", "500", ""]
BUDGETS = ["800", "1500", "20000"]


@dataclass
class Run:
    """The network, the improvements' ids (a's URIs), and the steps taken so far."""

    network: Network
    seed: int
    improvements: list[str]
    steps: list[str] = field(default_factory=list)
    c_follows: bool = False

    def note(self, text: str) -> None:
        self.steps.append(f"{len(self.steps):2d}. {text}")

    def failure(self) -> str:
        return f"seed {self.seed}; steps:\n" + "\n".join(self.steps)


# --- What the pages do ---------------------------------------------------------------------------


async def announce_funding(peer: Peer, improvement_id: int | None = None) -> None:
    """``instance.outgoing.announce_improvements(..., funding=True)`` after a money change."""
    async with peer.federation.sessions() as session:
        ids = [improvement_id] if improvement_id is not None else []
        await publish_improvement_changes(session, peer.federation, EN, ids, funding=True)
        await session.commit()


async def local_program(a: Peer) -> None:
    """a's own program: 50 cents per euro from a's region, for pledges made on a and b."""
    region = await organisation(a, "region", "public-body")
    now = utcnow()
    async with a.federation.sessions() as session:
        program = await pledge_ops.create_program(
            session,
            region,
            {
                "name": "La Région double la mise",
                "ratio": "0.5",
                "budget": "600",
                "starts": (now - timedelta(days=1)).isoformat(),
                "ends": (now + timedelta(days=30)).isoformat(),
                "eligible_instances": "a.test,b.test",
            },
            base_url=a.base_url,
        )
        await pledge_ops.set_program_status(session, program, "active", base_url=a.base_url)


async def pledge(peer: Peer, slug: str, improvement_uri: str, cents: int) -> str:
    """The pledge form's two checks, then ``pledge_make``: the pledge and its Offer in one
    transaction, then the improvement's news. What happened, for the log."""
    federation = peer.federation
    async with federation.sessions() as session:
        giver = await ops.get_local_organisation(session, slug)
        query = select(Improvement).where(Improvement.uri == improvement_uri)
        improvement = (await session.exec(query)).one()
        commons = await session.get(Commons, improvement.commons_id)
        assert giver is not None and commons is not None
        if cents > await pledge_ops.still_needed(session, improvement):
            return "refused by the form (more than still needed)"
        inboxes = await pledge_inboxes(session, federation, giver, commons)
        try:
            made = await pledge_ops.make_pledge(
                session,
                giver,
                improvement,
                cents,
                base_url=peer.base_url,
                created_by_id=None,
                commit=False,
            )
        except InvalidFields as error:
            return f"refused: {error.errors[0].message}"
        await publish_pledge(session, federation, made, inboxes)
        await session.commit()
        improvement_id = improvement.id
    await announce_funding(peer, improvement_id)
    return f"made {made.uri.rsplit('/', 1)[-1][:8]}"


async def change_status(peer: Peer, pledge_id: int, target: PledgeStatus) -> str:
    """Cancel, pay or refund a pledge made on ``peer``, as its page does."""
    federation = peer.federation
    async with federation.sessions() as session:
        pledge = await session.get(Pledge, pledge_id)
        assert pledge is not None
        inboxes = await inboxes_of(session, federation, pledge)
        base_url = peer.base_url
        refused = pledge.status == PledgeStatus.REFUSED  # no news: the commons never held it
        try:
            if target == PledgeStatus.CANCELLED:
                await pledge_ops.cancel_pledge(session, pledge, base_url=base_url, commit=False)
            elif target == PledgeStatus.PAID:
                await record_paid(session, pledge, base_url)
            else:
                await pledge_ops.refund_pledge(session, pledge, base_url=base_url, commit=False)
        except InvalidFields as error:
            return f"refused: {error.errors[0].message}"
        if not refused:
            await publish_pledge_status(session, federation, pledge, inboxes)
        await session.commit()
        improvement_id = pledge.improvement_id
    await announce_funding(peer, improvement_id)
    return "done"


async def edit_program(c: Peer, cap: str, budget: str) -> None:
    """c's active program gets new rules (``update_program``, which recomputes every match;
    the edit page changes drafts only), then the improvements' news, as pages send it."""
    async with c.federation.sessions() as session:
        program = (await session.exec(select(MatchingProgram))).one()
        await pledge_ops.update_program(
            session,
            program,
            {
                "name": program.name,
                "ratio": program.ratio,
                "budget": budget,
                "per_contributor_cap": cap,
                "starts": program.starts_at.isoformat(),
                "ends": program.ends_at.isoformat(),
                "eligible_instances": program.eligible_instances,
            },
            base_url=c.base_url,
        )
    await announce_funding(c)


# --- The random steps ----------------------------------------------------------------------------


async def local_pledges(peer: Peer, status: PledgeStatus) -> list[Pledge]:
    return [p for p in await rows(peer, Pledge) if p.origin is None and p.status == status]


async def step(run: Run, rng: random.Random) -> None:
    """One random step. An instance that is down (``Peers.down``) is out altogether: nobody
    reaches it, its worker does not run, its people cannot use its pages."""
    a, b, c, d, peers = run.network
    down = peers.down
    up = [p for p in (a, b, c, d) if p.host not in down]
    kind = rng.choices(
        ["pledge", "cancel", "pay", "refund", "program", "work", "drain", "outage", "back"],
        weights=[6, 2, 1.5, 0.7, 1, 2.5, 0.8, 0.5 if len(down) < 2 else 0, 1.5 if down else 0],
    )[0]
    if kind in ("pledge", "cancel", "pay", "refund", "program"):
        where = {"program": c, "pledge": None}.get(kind)
        index, slug, _kind = rng.choice(GIVERS)
        peer = where or (run.network[index] if kind == "pledge" else rng.choice([a, b, d]))
        if peer.host in down:
            run.note(f"{peer.host} is down: no {kind} there")
            return
    if kind == "pledge":
        uri = rng.choice(run.improvements)
        cents = rng.randrange(20_00, 900_00)
        outcome = await pledge(peer, slug, uri, cents)
        run.note(f"{peer.host} {slug} pledges {cents} to {uri[-14:]}: {outcome}")
    elif kind in ("cancel", "pay", "refund"):
        before = PledgeStatus.PAID if kind == "refund" else PledgeStatus.PLEDGED
        target = {
            "cancel": PledgeStatus.CANCELLED,
            "pay": PledgeStatus.PAID,
            "refund": PledgeStatus.REFUNDED,
        }[kind]
        candidates = await local_pledges(peer, before)
        if not candidates:
            run.note(f"{peer.host}: no pledge to {kind}")
            return
        chosen = rng.choice(candidates)
        assert chosen.id is not None
        outcome = await change_status(peer, chosen.id, target)
        run.note(f"{peer.host} {kind}s {chosen.uri.rsplit('/', 1)[-1][:8]}: {outcome}")
    elif kind == "program":
        cap, budget = rng.choice(CAPS), rng.choice(BUDGETS)
        await edit_program(c, cap, budget)
        run.note(f"c's program: cap {cap or 'none'}, budget {budget}")
    elif kind == "work":
        peer = rng.choice(up)
        handled = await peer.work()
        run.note(f"{peer.host} works one pass ({handled} rows)")
    elif kind == "outage":
        host = rng.choice([p.host for p in up])
        down.add(host)
        run.note(f"{host} is down")
    elif kind == "back":
        host = rng.choice(sorted(down))
        down.discard(host)
        run.note(f"{host} is back")
    else:
        await drain(*up)
        run.note(f"{', '.join(p.host for p in up)} drain")


async def time_passes(*peers: Peer) -> None:
    """Hours go by: deliveries waiting to be tried again are due, held activities are tried
    again, failed fetches are forgotten (as ``failed_fetch_seconds`` says)."""
    past = utcnow() - timedelta(seconds=1)
    for peer in peers:
        async with peer.federation.sessions() as session:
            waiting = col(Delivery.state) == DeliveryState.NEW
            await session.exec(
                update(Delivery).where(waiting).values(next_attempt_at=past, locked_until=None)
            )
            held = col(InboxItem.state) == InboxState.HELD
            await session.exec(update(InboxItem).where(held).values(next_attempt_at=past))
            await session.exec(delete(FetchFailure))
            await session.commit()


async def troubles(network: Network) -> str:
    """What each instance could not apply, or applied with a remark, to explain a failure."""
    lines = []
    for peer in network[:4]:
        for item in await rows(peer, InboxItem):
            if item.error or item.state != InboxState.DONE:
                lines.append(
                    f"{peer.host}: {item.type} from {item.actor_uri} {item.state}: "
                    f"{item.error[:300]}"
                )
    return "inbox rows not simply done:\n" + "\n".join(lines)


async def settle(network: Network) -> None:
    """Every instance reachable again, and time enough for every retry."""
    a, b, c, d, peers = network
    peers.down.clear()
    for _ in range(3):
        await time_passes(a, b, c, d)
        await drain(a, b, c, d)


# --- What must hold once everything is delivered ---------------------------------------------


async def check_a_counts_what_it_holds(run: Run) -> dict[str, int]:
    """a's funded amount of each improvement, from the rows; and its Article says it. c's
    matches count within what the pledges leave of the budget: c may have matched a pledge
    before hearing of one a took meanwhile, and a never counts past the budget."""
    a = run.network[0]
    improvements = {i.uri: i for i in await rows(a, Improvement)}
    pledges = await rows(a, Pledge)
    local = await rows(a, Match)
    remote = await rows(a, RemoteMatch)
    totals = {}
    for uri in run.improvements:
        improvement = improvements[uri]
        mine = {p.id: p for p in pledges if p.improvement_id == improvement.id}
        live = sum(p.amount_cents for p in mine.values() if p.status in LIVE_STATUSES)
        matched = sum(m.amount_cents for m in local if m.pledge_id in mine)
        from_c = sum(m.amount_cents for m in remote if m.pledge_id in mine)
        room = max(0, improvement.budget_cents - live - matched)
        totals[uri] = live + matched + min(from_c, room)
        assert totals[uri] <= max(live, improvement.budget_cents), uri
        article = await a.client.get(uri, headers={"Accept": "application/activity+json"})
        assert article.status_code == 200
        assert article.json()["fundedAmount"] == totals[uri], uri
    return totals


async def check_copies_show_a_s_total(run: Run, totals: dict[str, int]) -> None:
    _a, b, c, d, _peers = run.network
    for peer in (b, c, d) if run.c_follows else (b, d):
        for uri, total in totals.items():
            assert await origin_funded(peer, uri) == total, f"{peer.host}'s copy of {uri}"


async def check_pledges_agree(run: Run) -> None:
    """Every pledge a holds has, on a (and on c, which matches it), the status its origin
    gives it; a pledge a does not hold was refused, and counts nowhere, on its origin either:
    refused, or cancelled or refunded before the refusal came back. One paid first is a
    refund due (``federation.pledges_sync.on_rejected_pledge``)."""
    a, b, c, d, _peers = run.network
    held = {p.uri: p for p in await rows(a, Pledge)}
    on_c = {p.uri: p for p in await rows(c, Pledge)}
    for origin in (a, b, d):
        for made in await rows(origin, Pledge):
            if made.origin is not None:
                continue
            copy = held.get(made.uri)
            if copy is None:
                assert made.status not in LIVE_STATUSES, f"{made.uri}: refused, yet {made.status}"
                assert made.uri not in on_c
                continue
            assert copy.status == made.status, made.uri
            if run.c_follows:
                assert made.uri in on_c and on_c[made.uri].status == made.status, made.uri
    if run.c_follows:
        assert set(on_c) == set(held)


async def check_matches(run: Run) -> None:
    """a's copy of each of c's matches says what c says; c keeps to its program's rules."""
    a, _b, c, d, _peers = run.network
    program = (await rows(c, MatchingProgram))[0]
    c_pledges = {p.id: p for p in await rows(c, Pledge)}
    c_matches = await rows(c, Match)
    a_pledges = {p.id: p for p in await rows(a, Pledge)}
    said = {m.uri: m.amount_cents for m in c_matches}
    counted = {r.uri: r.amount_cents for r in await rows(a, RemoteMatch)}
    assert {u: v for u, v in counted.items() if v} == said
    for match in c_matches:
        assert match.uri == match_uri(c.base_url, match.program_id, match.pledge_id)
    for remote in await rows(a, RemoteMatch):  # each about the pledge c matched
        [match] = [m for m in c_matches if m.uri == remote.uri] or [None]
        if match is not None:
            assert a_pledges[remote.pledge_id].uri == c_pledges[match.pledge_id].uri
    per_contributor: dict[int, int] = {}
    for match in c_matches:
        pledge = c_pledges[match.pledge_id]
        assert pledge.origin != "d.test", f"c matched the rogue pledge {pledge.uri}"
        per_contributor[pledge.organisation_id] = (
            per_contributor.get(pledge.organisation_id, 0) + match.amount_cents
        )
    if program.per_contributor_cap_cents is not None:
        assert max(per_contributor.values(), default=0) <= program.per_contributor_cap_cents
    assert sum(m.amount_cents for m in c_matches) <= program.budget_cents
    rogue = {p.id for p in a_pledges.values() if p.origin == "d.test"}
    assert not [m for m in await rows(a, Match) if m.pledge_id in rogue]
    assert await rows(d, Match) == []


@pytest.mark.parametrize("seed", SEEDS)
async def test_random_funding_converges_on_every_instance(network: Network, seed: int) -> None:
    a, b, c, d, _peers = network
    rng = random.Random(seed)
    first = await improvement_on(a, budget=str(rng.choice([2500, 4000, 6000])))
    second = await another_improvement_on(a, str(rng.choice([1500, 3000])), "Accessibilité")
    run = Run(network, seed, [first.uri, second.uri])
    await local_program(a)
    await program_on(c, "a.test,b.test")
    for index, slug, kind in GIVERS:
        await organisation(network[index], slug, kind)
    await follows(b, a)
    await follows(d, a)
    c_joins = rng.randrange(0, STEPS // 2)
    try:
        for number in range(STEPS):
            reachable = not {a.host, c.host} & network[4].down
            if number >= c_joins and not run.c_follows and reachable:
                await follows(c, a)
                run.c_follows = True
                run.note("c follows a")
            await step(run, rng)
        if not run.c_follows:
            await settle(network)
            await follows(c, a)
            run.c_follows = True
            run.note("c follows a")
        await settle(network)
        totals = await check_a_counts_what_it_holds(run)
        await check_copies_show_a_s_total(run, totals)
        await check_pledges_agree(run)
        await check_matches(run)
    except AssertionError as error:
        raise AssertionError(f"{error}\n{run.failure()}\n{await troubles(network)}") from error
    # The run did something worth checking: money moved, and c matched some of it.
    assert sum(totals.values()) > 0, run.failure()
    assert await rows(c, LedgerEntry), run.failure()


# --- What the random runs found, one by one --------------------------------------------------


async def matched_on_c(c: Peer) -> dict[str, int]:
    """Pledge uri → c's match of it."""
    pledges = {p.id: p.uri for p in await rows(c, Pledge)}
    return {pledges[m.pledge_id]: m.amount_cents for m in await rows(c, Match)}


async def test_a_funder_following_late_reads_back_pledges_made_on_the_commons_instance(
    network: Network,
) -> None:
    """a's own organisations pledge with an Offer to a's followers, not through the commons'
    Accept that a back-fill reads: the commons now keeps an Accept of those too."""
    a, _b, c, _d, _peers = network
    improvement = await improvement_on(a)
    await organisation(a, "atelier")
    kept = await pledge(a, "atelier", improvement.uri, 30_000)
    dropped = await pledge(a, "lieu", improvement.uri, 10_000)
    assert kept.startswith("made") and dropped.startswith("made")
    [cancelled] = [p for p in await rows(a, Pledge) if p.amount_cents == 10_000]
    assert cancelled.id is not None
    await change_status(a, cancelled.id, PledgeStatus.CANCELLED)
    await drain(a)

    await program_on(c, "a.test,b.test")
    await follows(c, a)

    statuses = {p.uri: p.status for p in await rows(c, Pledge)}
    assert statuses == {p.uri: p.status for p in await rows(a, Pledge)}
    assert sorted(statuses.values()) == ["cancelled", "pledged"]
    assert list((await matched_on_c(c)).values()) == [30_000]
    await drain(a, c)
    assert await origin_funded(c, improvement.uri) == 60_000  # counted by a, c's match too


async def test_a_relay_waits_while_the_pledging_instance_is_down(network: Network) -> None:
    """c checks a relayed pledge's proof with the pledging organisation's key: when b cannot
    be reached at that moment, the relay waits and is tried again, rather than refused."""
    a, b, c, _d, peers = network
    improvement = await improvement_on(a)
    await program_on(c, "a.test,b.test")
    await follows(b, a)
    await follows(c, a)
    await organisation(b, "oxalis", "cae")
    await pledge(b, "oxalis", improvement.uri, 30_000)
    await drain(a, b)  # a accepts it, and relays it to c

    peers.down.add(b.host)
    await drain(a, c)
    [relay] = [i for i in await rows(c, InboxItem) if i.type == "Accept" and "proof" in i.body]
    assert relay.state == InboxState.HELD, relay.error
    assert await matched_on_c(c) == {}

    peers.down.clear()
    await time_passes(a, b, c)
    await drain(a, b, c)
    assert list((await matched_on_c(c)).values()) == [30_000]
    assert await origin_funded(b, improvement.uri) == 60_000


async def test_a_funder_following_while_a_pledging_instance_is_down_reads_it_later(
    network: Network,
) -> None:
    """What a back-fill cannot check yet (b's key, b being down) is held, not skipped."""
    a, b, c, _d, peers = network
    improvement = await improvement_on(a)
    await follows(b, a)
    await organisation(b, "oxalis", "cae")
    await pledge(b, "oxalis", improvement.uri, 30_000)
    await drain(a, b)

    await program_on(c, "a.test,b.test")
    peers.down.add(b.host)
    await follows(c, a)
    assert await rows(c, Pledge) == []
    [held] = [i for i in await rows(c, InboxItem) if i.state == InboxState.HELD]
    assert held.waiting_for == f"{b.base_url}/orgs/oxalis"

    peers.down.clear()
    await time_passes(a, b, c)
    await drain(a, b, c)
    assert list((await matched_on_c(c)).values()) == [30_000]
    assert await origin_funded(c, improvement.uri) == 60_000


async def test_an_older_article_delivered_late_does_not_undo_a_newer_one(
    network: Network,
) -> None:
    """Two Articles sent within the same second, the older one retried after the newer one
    arrived: the copy keeps the newer figure (their times are to the microsecond)."""
    a, b, _c, _d, peers = network
    improvement = await improvement_on(a)
    await follows(b, a)
    peers.down.add(b.host)
    await pledge(a, "lieu", improvement.uri, 10_000)  # its Article cannot reach b…
    await drain(a)
    peers.down.clear()
    await pledge(a, "lieu", improvement.uri, 20_000)  # …this one can, at once
    await drain(a, b)
    assert await origin_funded(b, improvement.uri) == 30_000

    await time_passes(a)  # the first one is retried now
    await drain(a, b)
    updates = [i for i in await rows(b, InboxItem) if i.type == "Update"]
    assert len(updates) == 2
    assert await origin_funded(b, improvement.uri) == 30_000
