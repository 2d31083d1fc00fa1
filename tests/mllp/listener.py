"""An MLLP receiver for the tests: python-hl7's asyncio MLLP server (PyPI `hl7`, pinned).

Every message is kept as DIR/<MSH-10>.hl7 and acknowledged AA; one whose text holds REJECT-ME is
acknowledged AR, one holding BUSY-ONCE AE the first time it arrives.
Usage: listener.py DIR PORT
"""

import asyncio
import pathlib
import sys

import hl7
from hl7.mllp import start_hl7_server

DIR = pathlib.Path(sys.argv[1])
seen = set()


def ack_code(raw: str, control_id: str) -> str:
    if "REJECT-ME" in raw:
        return "AR"
    if "BUSY-ONCE" in raw and control_id not in seen:
        seen.add(control_id)
        return "AE"
    return "AA"


async def receive(reader, writer):
    try:
        while not writer.is_closing():
            message = await reader.readmessage()
            control_id = str(message.segment("MSH")[10])
            raw = str(message)
            code = ack_code(raw, control_id)
            if code == "AA":
                (DIR / f"{control_id}.hl7").write_text(raw, encoding="utf-8")
            writer.writemessage(message.create_ack(ack_code=code))
            await writer.drain()
    except asyncio.IncompleteReadError:
        if not writer.is_closing():
            writer.close()
            await writer.wait_closed()


async def main(port: int) -> None:
    DIR.mkdir(parents=True, exist_ok=True)
    async with await start_hl7_server(receive, host="127.0.0.1", port=port, encoding="utf-8") as server:
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[2])))
