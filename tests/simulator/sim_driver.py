"""The frontend driver used by the simulator's tests: relays KCI's commands to a virtual card."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any

from simulator.admin_client import AdminClient
from simulator.app import Simulator
from simulator.client import KciClient
from virtual_card.card import KmtCard
from virtual_card.factory import make_card_image

SEED = 7
BALANCE = 50_000


@dataclass
class Driver:
    """Plays the frontend + backend: relays KCI's commands to a KmtCard and its answers back."""

    kci: KciClient
    admin: AdminClient
    sim: Simulator
    refs: Any = field(default_factory=lambda: itertools.count(1))

    @property
    def tid(self) -> str:
        return self.sim.partner.tid

    @property
    def mid(self) -> str:
        return self.sim.partner.mid

    def base(self, card: KmtCard | str) -> dict[str, Any]:
        card_no = card if isinstance(card, str) else card.card_no
        return {"card_no": card_no, "tid": self.tid, "mid": self.mid}

    async def call(self, op: str, body: dict[str, Any]) -> dict[str, Any]:
        return await self.kci.call(op, body)

    async def ok(self, op: str, body: dict[str, Any]) -> dict[str, Any]:
        env = await self.kci.call(op, body)
        assert env["code"] == 200, env
        data: dict[str, Any] = env["data"]
        return data

    async def card_info(self, card: KmtCard) -> dict[str, Any]:
        d1 = await self.ok("card-info", self.base(card) | {"step": 1})
        answer = card.handle(bytes.fromhex(d1["command"]))
        assert answer is not None
        d2 = await self.ok(
            "card-info", self.base(card) | {"step": 2, "session_id": d1["session_id"], "card_resp": answer.hex()}
        )
        answer = card.handle(bytes.fromhex(d2["command"]))
        assert answer is not None
        return await self.ok(
            "card-info",
            self.base(card)
            | {
                "step": 3,
                "session_id": d1["session_id"],
                "card_resp": answer.hex(),
                "sequence_data": d2["sequence_data"],
            },
        )

    async def reserve(self, card: KmtCard, amount: int = 20_000, ref_no: str | None = None) -> dict[str, Any]:
        ref = ref_no or f"REF{next(self.refs):06d}"
        return await self.ok("reservation/create", self.base(card) | {"amount": amount, "ref_no": ref})

    async def load_steps(
        self, card: KmtCard, *, until: int = 7, prev_balance: int | None = None, reservation_number: str | None = None
    ) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        """Run load-balance steps 1..until, relaying each command to the card; returns the last envelope
        and the data of each successful step."""
        body = self.base(card) | {"step": 1, "prev_balance": card.balance if prev_balance is None else prev_balance}
        if reservation_number:
            body["reservation_number"] = reservation_number
        env = await self.call("load-balance", body)
        datas = [env["data"]] if env["code"] == 200 else []
        step = 1
        while env["code"] == 200 and step < until:
            data = env["data"]
            answer = card.handle(bytes.fromhex(data["command"]))
            if answer is None:
                break
            step += 1
            env = await self.call(
                "load-balance",
                self.base(card)
                | {
                    "step": step,
                    "balance": card.balance,
                    "session_id": data["session_id"],
                    "card_resp": answer.hex(),
                    "sequence_data": data["sequence_data"],
                },
            )
            if env["code"] == 200:
                datas.append(env["data"])
        return env, datas

    async def top_up(self, card: KmtCard, amount: int = 20_000) -> dict[str, Any]:
        await self.reserve(card, amount)
        env, datas = await self.load_steps(card)
        assert env["code"] == 200 and datas[-1]["step"] == 7, env
        return await self.ok(
            "load-balance/confirm",
            self.base(card) | {"session_id": datas[-1]["session_id"], "last_balance": card.balance},
        )


def make_card(index: int = 0, balance: int = BALANCE) -> KmtCard:
    return KmtCard(make_card_image(SEED, index, balance=balance))
