"""Money the person approves: per-video and daily limits, and asking before a costly video.

The daily budgets are enforced by the journal itself, atomically with the insert of the job (`SpendLimit`), so two
server processes cannot both spend their last part; this module builds those limits and does the asking.

Above SEEDANCE_CONFIRM_ABOVE the person approves exactly one request:

- A client that can ask (elicitation) always asks the person, whatever the call's arguments say: over the
  request's back-channel on the 2025 protocol, as an `input_required` round on 2026-07-28. Decline or cancel
  sends nothing.
- A client that cannot ask gets a refusal (or a dry run) naming the cost and an **approval id** for exactly that
  request: its fingerprint (provider, path, body: every setting and the prompt, and the caller's principal) and
  its estimated cost, signed with a server secret, valid for an hour by the journal's clock (the one every replica
  shares), and good for one video: the job it paid for records it, and the journal returns that job to a second
  call with it. Nothing else is an approval: not an amount, not an id of another request, price or
  person. The secret is SEEDANCE_REQUEST_STATE_KEYS when set (so every replica accepts an id another minted), else
  a key of the state directory's own (`approval.key`, shared by every server on it). Without the secret a model
  cannot make an id; it can only get one from a quote, which tells it the cost and to ask the person. What no
  server can know is who answered the model: with a client that cannot ask, the id makes sure that what is paid is
  what was quoted, once.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import anyio.to_thread
from pydantic import BaseModel, Field, ValidationError

from seedance_mcp.errors import SpendRefused
from seedance_mcp.results import money

if TYPE_CHECKING:
    from mcp.types import InputRequiredResult

    from seedance_mcp.config import Settings
    from seedance_mcp.journal import SpendLimit
    from seedance_mcp.tools.context import Caller, ToolContext
    from seedance_mcp.wire import HttpRequest, VideoRequest

APPROVAL_PREFIX = "apv-"
APPROVAL_SECONDS = 3600.0
"""How long an approval id stays good: long enough to ask the person, short enough not to linger."""
ASK_KEY = "seedance_cost_approval"
"""The key of the question in an `input_required` round (2026-07-28)."""
_KEY_FILE = "approval.key"
_KEY_LABEL = b"seedance-mcp/approval/v1"


class CostApproval(BaseModel):
    """What the person is asked before a video above SEEDANCE_CONFIRM_ABOVE."""

    approve: bool = Field(description="Make this video and pay for it")


def spend_limits(who: Caller, currency: str) -> list[SpendLimit]:
    """The daily budgets the journal checks at the insert of this caller's job, in the currency this server's
    provider bills in: everyone's spend together (SEEDANCE_DAILY_BUDGET), and the caller's own
    (SEEDANCE_DAILY_BUDGET_PER_PERSON, or their tokens-file entry)."""
    from seedance_mcp.journal import SpendLimit

    limits: list[SpendLimit] = []
    if who.team_daily_budget is not None:
        name = "SEEDANCE_DAILY_BUDGET (everyone's spend together)" if who.principal else "SEEDANCE_DAILY_BUDGET"
        limits.append(SpendLimit(limit=who.team_daily_budget, name=name, currency=currency, principal=None))
    if who.daily_budget is not None:
        limits.append(
            SpendLimit(limit=who.daily_budget, name=who.daily_budget_name, currency=currency, principal=who.principal)
        )
    return limits


def check_cost(who: Caller, request: VideoRequest, price: tuple[float, str] | None) -> float | None:
    """The estimated cost, after the per-video limit; refuses when a limit is set but no price is known."""
    limits = (who.max_cost_per_video, who.daily_budget, who.team_daily_budget)
    if price is None:  # SEEDANCE_CONFIRM_ABOVE alone asks the person instead (`needs_approval`)
        if any(limit is not None for limit in limits):
            raise SpendRefused(
                f"No price is known for {request.model_id} on this provider, so the cost limits set on this server "
                "cannot be checked. Tell the user to add its price with SEEDANCE_PRICES."
            )
        return None
    estimate = money(request.estimated_tokens, price[0]) or 0.0
    if who.max_cost_per_video is not None and estimate > who.max_cost_per_video:
        raise SpendRefused(
            f"This video would cost about {estimate:.2f} {price[1]} ({request.estimated_tokens:,} output tokens), "
            f"above SEEDANCE_MAX_COST_PER_VIDEO = {who.max_cost_per_video:.2f} {price[1]}. Make it cheaper "
            "(shorter, lower resolution, a cheaper model: see list_models) or ask the user to raise the limit."
        )
    return estimate


@dataclass(frozen=True, slots=True)
class Quote:
    """What the person approves: exactly one request, at its estimated cost."""

    fingerprint: str
    """`jobs.fingerprint_of` the request: provider, path, body and the caller's principal."""
    estimate: float | None
    """At list price; None when no price is known for it here."""
    currency: str
    what: str
    """The request in a person's words: model, length, resolution, cost."""


def quote_of(
    provider: str, request: VideoRequest, http_request: HttpRequest, principal: str, price: tuple[float, str] | None
) -> Quote:
    from seedance_mcp.jobs import fingerprint_of

    video = f"{request.model_id}, {request.effective_seconds:g} s at {request.effective_resolution}"
    tokens = f"{request.estimated_tokens:,} output tokens"
    fingerprint = fingerprint_of(provider, http_request, principal)
    if price is None:
        return Quote(fingerprint, None, "", f"{video}, cost unknown ({tokens}; no list price for it here)")
    estimate = round(money(request.estimated_tokens, price[0]) or 0.0, 4)
    return Quote(fingerprint, estimate, price[1], f"{video}, about {estimate:.2f} {price[1]} ({tokens} at list price)")


def quote_of_takes(quote: Quote, takes: int) -> Quote:
    """The quote of `takes` takes of one request: one approval for all of them, at their summed cost. Its
    fingerprint is the request's and the number of takes, so an approval of one take approves no more."""
    if takes <= 1:
        return quote
    fingerprint = hashlib.sha256(f"{quote.fingerprint}\ntakes {takes}".encode()).hexdigest()
    if quote.estimate is None:
        return Quote(fingerprint, None, quote.currency, f"{takes} takes, each {quote.what}")
    estimate = round(quote.estimate * takes, 4)
    what = f"{takes} takes, about {estimate:.2f} {quote.currency} in all; each {quote.what}"
    return Quote(fingerprint, estimate, quote.currency, what)


class Approvals:
    """Mints and checks approval ids (see the module docstring). The key is read or made on first use."""

    def __init__(self, settings: Settings) -> None:
        self._shared = [key.get_secret_value().encode() for key in settings.request_state_keys]
        self._state_dir = settings.state_dir
        self._keys: list[bytes] | None = None

    async def mint(self, quote: Quote, now: float) -> str:
        """An id for exactly this quote, issued at `now` (the journal's clock: `JobManager.now()`)."""
        keys = await self._loaded()
        issued = int(now)
        return f"{APPROVAL_PREFIX}{issued}-{_mac(keys[0], quote, issued)}"

    async def check(self, approval_id: str, quote: Quote, now: float) -> tuple[float | None, str]:
        """When `approval_id` was issued, if it approves exactly this quote at `now` (the journal's clock); else None
        and why not."""
        keys = await self._loaded()
        issued_text, _, mac = approval_id.strip().removeprefix(APPROVAL_PREFIX).partition("-")
        if not approval_id.strip().startswith(APPROVAL_PREFIX) or not issued_text.isdigit() or not mac:
            return None, "is not an approval id"
        issued = int(issued_text)
        if not any(hmac.compare_digest(mac, _mac(key, quote, issued)) for key in keys):
            return None, "approves another request, price or person (or another server gave it)"
        if not issued - 60 <= now <= issued + APPROVAL_SECONDS:
            return None, f"has expired (approvals last {APPROVAL_SECONDS / 3600:g} h)"
        return float(issued), ""

    async def _loaded(self) -> list[bytes]:
        if self._keys is None:
            secrets = self._shared or [await anyio.to_thread.run_sync(state_dir_key, self._state_dir)]
            self._keys = [hmac.new(secret, _KEY_LABEL, hashlib.sha256).digest() for secret in secrets]
        return self._keys


def _mac(key: bytes, quote: Quote, issued: int) -> str:
    cost = "unknown" if quote.estimate is None else f"{quote.estimate:.4f} {quote.currency}"
    message = f"{quote.fingerprint}\n{cost}\n{issued}".encode()
    return hmac.new(key, message, hashlib.sha256).hexdigest()[:32]


def state_dir_key(state_dir: Path) -> bytes:
    """The state directory's approval key: read, or made (32 random bytes, mode 0600) by whichever server on the
    directory comes first; a link put in its place is not followed."""
    from seedance_mcp.media.files import FileRefused, read_regular_file

    path = state_dir.expanduser() / _KEY_FILE
    for _ in range(2):
        try:
            key = read_regular_file(path, 4096)
        except FileRefused as refused:
            if refused.refusal == "unreadable":
                raise OSError(f"{path} cannot be read ({refused.detail})") from None
            if refused.refusal != "missing":
                break  # a link, FIFO or huge file in its place: not a key
            path.parent.mkdir(parents=True, exist_ok=True)
            spare = path.with_name(f".{_KEY_FILE}.{os.getpid()}.{os.urandom(4).hex()}.part")
            fd = os.open(spare, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0), 0o600)
            try:
                os.write(fd, os.urandom(32))
                os.fsync(fd)
            finally:
                os.close(fd)
            try:
                os.link(spare, path)  # only if no other server made it meanwhile: theirs wins, and both read it
            except FileExistsError:
                pass
            finally:
                spare.unlink(missing_ok=True)
            continue
        if len(key) >= 32:
            return key
        break
    raise OSError(f"{path} is not a usable approval key (delete it, and a new one is made)")


@dataclass(frozen=True, slots=True)
class Approval:
    granted: bool
    approval_id: str | None = None
    """The approval id that granted it, recorded on the job it pays for (the journal allows one live job per id)."""
    since: float | None = None
    """With an approval id: when it was issued. Takes (several jobs under one id) count identical jobs made since
    then as its use."""


def needs_approval(who: Caller, estimate: float | None) -> bool:
    """Above SEEDANCE_CONFIRM_ABOVE, or of a cost no one can tell (then the person judges it)."""
    return who.confirm_above is not None and (estimate is None or estimate > who.confirm_above)


def can_ask(ctx: ToolContext) -> bool:
    """Whether the person can be asked in this call: the client shows forms (elicitation), and the protocol has
    a way to send the question (an `input_required` round on 2026-07-28, the request's back-channel before)."""
    return _shows_forms(ctx) and not no_way_to_ask(ctx)


def _shows_forms(ctx: ToolContext) -> bool:
    capabilities = ctx.client_capabilities
    elicitation = capabilities.elicitation if capabilities is not None else None
    return elicitation is not None and not (elicitation.form is None and elicitation.url is not None)


def no_way_to_ask(ctx: ToolContext) -> bool:
    """A client before 2026-07-28 on a transport without a back-channel (stateless HTTP): no question can reach
    it, and the server cannot even know whether it shows forms (its capabilities were declared to another
    request). An approval id is then no person's consent: refused without one (README: Spending limits)."""
    return not _input_required_era(ctx) and not ctx.request_context.session.can_send_request


UNREACHABLE_PERSON = (
    "This connection cannot carry a question to the user: the server runs stateless HTTP "
    "(SEEDANCE_HTTP_STATELESS=true) and the client speaks a protocol older than 2026-07-28, so an approval id is not "
    "taken for their consent here (the model could approve its own spending). Use a client on the 2026-07-28 "
    "protocol (asked in input_required rounds), or run the server with sessions (SEEDANCE_HTTP_STATELESS=false; "
    "behind several replicas, pin each Mcp-Session-Id to one replica)."
)
"""Why a legacy client on stateless HTTP gets no approval id above SEEDANCE_CONFIRM_ABOVE."""


def _input_required_era(ctx: ToolContext) -> bool:
    version = ctx.protocol_version
    return version is not None and version >= "2026-07-28"


async def approval(
    ctx: ToolContext,
    who: Caller,
    quote: Quote,
    approval_id: str | None,
    approvals: Approvals,
    now: float,
    tool: str = "generate_video",
) -> Approval | InputRequiredResult:
    """Whether the person approved this quote (granted at once when it is under SEEDANCE_CONFIRM_ABOVE).

    A client that can ask asks the person (an `input_required` round is returned to send the question on
    2026-07-28); `approval_id` then counts for nothing. Otherwise an approval id for exactly this quote approves
    it, and without one the call is refused with the cost and a new id for the person to approve. `now` is the
    journal's clock (`JobManager.now()`), which every replica checking an id shares."""
    threshold = who.confirm_above
    if not needs_approval(who, quote.estimate) or threshold is None:
        return Approval(granted=True)
    question = f"Make this Seedance {'video' if tool == 'generate_video' else 'film'}? {quote.what}."
    if can_ask(ctx):
        if _input_required_era(ctx):
            return await _ask_in_rounds(ctx, quote, question, approvals, now)
        from mcp.server.elicitation import AcceptedElicitation

        answer = await ctx.elicit(question, CostApproval)
        return Approval(granted=isinstance(answer, AcceptedElicitation) and answer.data.approve)
    limit = f"SEEDANCE_CONFIRM_ABOVE = {threshold:.2f} {quote.currency}".rstrip()
    why = f"above {limit}" if quote.estimate is not None else f"its cost cannot be checked against {limit}"
    if no_way_to_ask(ctx):
        raise SpendRefused(f"This video needs the user's approval: {quote.what}; {why}. {UNREACHABLE_PERSON}")
    problem = ""
    if approval_id is not None:
        issued, problem = await approvals.check(approval_id, quote, now)
        if issued is not None:
            return Approval(granted=True, approval_id=approval_id.strip(), since=issued)
    given = f" The approval_id given {problem}." if problem else ""
    raise SpendRefused(
        f"This {'video' if tool == 'generate_video' else 'film'} needs the user's approval: {quote.what}; {why}."
        f"{given} Ask the user; if they agree, call "
        f'{tool} again with the same arguments and approval_id="{await approvals.mint(quote, now)}" (it '
        "approves exactly this request, once, within the hour)."
    )


async def _ask_in_rounds(
    ctx: ToolContext, quote: Quote, question: str, approvals: Approvals, now: float
) -> Approval | InputRequiredResult:
    """2026-07-28: the question goes back as an `input_required` result; the client retries the call with the
    person's answer. The round's state (sealed by the SDK, bound to these arguments and this principal) is an
    approval id of this quote, so an answer counts only for the question asked about exactly this request."""
    from mcp.types import ElicitRequest, ElicitRequestFormParams, ElicitResult, InputRequiredResult

    answer = (ctx.input_responses or {}).get(ASK_KEY)
    asked = ctx.request_state
    if isinstance(answer, ElicitResult) and asked is not None:
        issued, _ = await approvals.check(asked, quote, now)
        if issued is not None:
            if answer.action != "accept" or answer.content is None:
                return Approval(granted=False)
            try:
                return Approval(granted=CostApproval.model_validate(answer.content).approve, approval_id=asked)
            except ValidationError:
                return Approval(granted=False)
    from mcp.server.elicitation import render_elicitation_schema

    params = ElicitRequestFormParams(message=question, requested_schema=render_elicitation_schema(CostApproval))
    return InputRequiredResult(
        input_requests={ASK_KEY: ElicitRequest(params=params)}, request_state=await approvals.mint(quote, now)
    )


def approval_note(who: Caller, quote: Quote, asks: bool, approval_id: str | None, *, unreachable: bool = False) -> str:
    """What a dry run adds to its next step about the person's approval."""
    if not needs_approval(who, quote.estimate):
        return ""
    if unreachable:
        return f" It needs the user's approval (above SEEDANCE_CONFIRM_ABOVE). {UNREACHABLE_PERSON}"
    if asks or approval_id is None:
        return " Above SEEDANCE_CONFIRM_ABOVE, the user will be asked to approve its cost before it is sent."
    return (
        f" It needs the user's approval (above SEEDANCE_CONFIRM_ABOVE): ask them; if they agree, add "
        f'approval_id="{approval_id}" (it approves exactly this video, once, within the hour).'
    )
