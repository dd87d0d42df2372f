"""The load generator: complete flows (start, read the code from the simulator, check) from
`concurrency` asyncio workers for a fixed time, each flow on a phone number of its own."""

from __future__ import annotations

import asyncio
import itertools
import random
import resource
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import aiohttp

from bench.processes import CLIENT_KEY, END_USER, SIM_PASSWORD, SIM_USER

TIMEOUT = aiohttp.ClientTimeout(total=30)
# Swiss mobiles +4179xxxxxxx: a stride coprime to 10**7 visits every number once and spreads
# consecutive flows over the 1000 prefixes (+4179ddd) of the per-prefix budget.
_STRIDE, _SPACE = 7_654_321, 10**7
_numbers = itertools.count()
_salt = random.randrange(_SPACE)


def next_phone() -> str:
    return f"+4179{(next(_numbers) * _STRIDE + _salt) % _SPACE:07d}"


class Failure(Exception):
    """A flow step that did not answer as expected; the message names the step and status,
    never a number or a code."""


@dataclass(frozen=True)
class Target:
    name: str
    url: str
    start: Callable[[aiohttp.ClientSession, str, str], Awaitable[str]]
    check: Callable[[aiohttp.ClientSession, str, str, str, str], Awaitable[None]]


@dataclass
class Sample:
    flows: int = 0
    elapsed: float = 0.0
    start_ms: list[float] = field(default_factory=list)
    check_ms: list[float] = field(default_factory=list)
    errors: Counter = field(default_factory=Counter)
    driver_cpu_s: float = 0.0
    driver_sim_connections: int = 0


async def _expect(response: aiohttp.ClientResponse, step: str, status: int) -> dict:
    if response.status != status:
        detail = ""
        if response.content_type.endswith("json"):
            detail = " " + str((await response.json()).get("code", ""))
        raise Failure(f"{step} {response.status}{detail}")
    return await response.json(content_type=None)


# -- the three targets -------------------------------------------------------------------
_AUTH = {"Authorization": f"Bearer {CLIENT_KEY}"}


async def _service_start(session, url, phone) -> str:
    body = {"phone": phone, **END_USER}
    async with session.post(url + "/otp/start", json=body, headers=_AUTH) as r:
        return (await _expect(r, "start", 201))["id"]


async def _service_check(session, url, ident, phone, code) -> None:
    body = {"id": ident, "code": code, **END_USER}
    async with session.post(url + "/otp/check", json=body, headers=_AUTH) as r:
        if not (await _expect(r, "check", 200)).get("valid"):
            raise Failure("check valid=false")


async def _baseline_start(session, url, phone) -> str:
    async with session.post(url + "/start", json={"phone": phone}) as r:
        return (await _expect(r, "start", 201))["id"]


async def _baseline_check(session, url, ident, phone, code) -> None:
    async with session.post(url + "/check", json={"phone": phone, "code": code}) as r:
        if not (await _expect(r, "check", 200)).get("valid"):
            raise Failure("check valid=false")


_CREDENTIALS = {"UserName": SIM_USER, "Password": SIM_PASSWORD}


async def _gateway(session, url: str, operation: str, step: str, **fields) -> None:
    async with session.post(f"{url}/{operation}", json={**_CREDENTIALS, **fields}) as r:
        status = (await _expect(r, step, 200)).get("StatusCode")
        if status != "1":
            raise Failure(f"{step} StatusCode {status}")


async def _simulator_start(session, url, phone) -> str:
    await _gateway(session, url, "SendTokenSMS", "start", Recipients=phone, TokenReference="1",
                   TokenMask="######", TokenValidity="10", MessageData="", Originator="Verify")
    return "1"


async def _simulator_check(session, url, ident, phone, code) -> None:
    await _gateway(session, url, "VerifyToken", "check", PhoneNumber=phone,
                   TokenReference=ident, VerificationCode=code)


def service(url: str) -> Target:
    return Target("service", url, _service_start, _service_check)


def twilio(url: str, secret: bytes) -> Target:
    """The same flows through the service's Twilio Verify face (/v2, issue 19): form bodies,
    HTTP Basic with the account sid, the check by VerificationSid."""
    from service.verification.tenant import DEFAULT, twilio_account_sid, twilio_service_sid

    auth = aiohttp.BasicAuth(twilio_account_sid(secret), CLIENT_KEY)
    base = f"/v2/Services/{twilio_service_sid(secret, DEFAULT)}"

    async def start(session, url, phone) -> str:
        form = {"To": phone, "Channel": "sms"}
        async with session.post(url + base + "/Verifications", data=form, auth=auth) as r:
            return (await _expect(r, "start", 201))["sid"]

    async def check(session, url, ident, phone, code) -> None:
        form = {"VerificationSid": ident, "Code": code}
        async with session.post(url + base + "/VerificationCheck", data=form, auth=auth) as r:
            if not (await _expect(r, "check", 200)).get("valid"):
                raise Failure("check valid=false")

    return Target("twilio", url, start, check)


def baseline(url: str) -> Target:
    return Target("baseline", url, _baseline_start, _baseline_check)


def simulator_alone(url: str) -> Target:
    """The gateway calls of a flow sent straight to the simulator: its own capacity."""
    return Target("simulator", url, _simulator_start, _simulator_check)


# -- the run -----------------------------------------------------------------------------
async def read_code(sim: aiohttp.ClientSession, sim_url: str, phone: str) -> str:
    async with sim.get(sim_url + "/_sim/messages", params={"recipient": phone}) as r:
        messages = await _expect(r, "read code", 200)
    if not messages or not messages[-1].get("code"):
        raise Failure("read code: no message")
    return messages[-1]["code"]


async def _flow(target: Target, app, sim, sim_url: str, sample: Sample) -> None:
    phone = next_phone()
    began = time.perf_counter()
    ident = await target.start(app, target.url, phone)
    started = time.perf_counter()
    code = await read_code(sim, sim_url, phone)
    checking = time.perf_counter()
    await target.check(app, target.url, ident, phone, code)
    sample.start_ms.append((started - began) * 1000)
    sample.check_ms.append((time.perf_counter() - checking) * 1000)
    sample.flows += 1


async def _worker(target, app, sim, sim_url, deadline: float, sample: Sample) -> None:
    while time.perf_counter() < deadline:
        try:
            await _flow(target, app, sim, sim_url, sample)
        except Failure as e:
            sample.errors[str(e)] += 1
        except (TimeoutError, aiohttp.ClientError) as e:
            sample.errors[type(e).__name__] += 1


def counting_trace(sample: Sample) -> aiohttp.TraceConfig:
    trace = aiohttp.TraceConfig()

    async def opened(session, context, params):
        sample.driver_sim_connections += 1

    trace.on_connection_create_end.append(opened)
    return trace


async def _run(target: Target, sim_url: str, concurrency: int, duration: float) -> Sample:
    sample = Sample()
    connector = aiohttp.TCPConnector(limit=concurrency)
    sim_connector = aiohttp.TCPConnector(limit=concurrency)
    async with (aiohttp.ClientSession(connector=connector, timeout=TIMEOUT) as app,
                aiohttp.ClientSession(connector=sim_connector, timeout=TIMEOUT,
                                      trace_configs=[counting_trace(sample)]) as sim):
        began = time.perf_counter()
        deadline = began + duration
        await asyncio.gather(*(_worker(target, app, sim, sim_url, deadline, sample)
                               for _ in range(concurrency)))
        sample.elapsed = time.perf_counter() - began
    return sample


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def run_point(target: Target, sim_url: str, concurrency: int, duration: float) -> Sample:
    """Flows for `duration` seconds; flows started before the deadline all finish, and
    flows/s is completed flows over the whole elapsed time."""
    cpu = _cpu()
    sample = asyncio.run(_run(target, sim_url, concurrency, duration))
    sample.driver_cpu_s = _cpu() - cpu
    return sample
