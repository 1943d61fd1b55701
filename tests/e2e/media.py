"""A phone's audio, for tests that must know who hears whom: an RTP endpoint that sends one steady tone
(G.711 mu-law, 20 ms packets) and keeps what it receives, and a tone detector (Goertzel) for that audio.

SIPp does the signalling and advertises this endpoint's port in its SDP (-key rtp_port); the endpoint
learns where to send from the SDP Asterisk sent back.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import re
import secrets
import struct
import time

RATE = 8000
PACKET_SAMPLES = 160  # 20 ms
_SDP_CONNECTION = re.compile(r"^c=IN IP4 (\S+)", re.MULTILINE)
_SDP_AUDIO = re.compile(r"^m=audio (\d+) ", re.MULTILINE)


def _linear_to_ulaw(sample: int) -> int:
    """G.711 mu-law encoding of one 16-bit sample."""
    bias, clip = 0x84, 32635
    sign = 0x80 if sample < 0 else 0
    magnitude = min(abs(sample), clip) + bias
    exponent = max(0, magnitude.bit_length() - 8)
    exponent = min(exponent, 7)
    mantissa = (magnitude >> (exponent + 3)) & 0x0F
    return ~(sign | (exponent << 4) | mantissa) & 0xFF


def _ulaw_to_linear(byte: int) -> int:
    byte = ~byte & 0xFF
    sign, exponent, mantissa = byte & 0x80, (byte >> 4) & 0x07, byte & 0x0F
    magnitude = (((mantissa << 3) + 0x84) << exponent) - 0x84
    return -magnitude if sign else magnitude


_DECODE = [_ulaw_to_linear(b) for b in range(256)]


def tone(frequency: float, samples: int, amplitude: float = 0.3) -> bytes:
    """`samples` of a sine at `frequency`, mu-law encoded."""
    return bytes(
        _linear_to_ulaw(round(amplitude * 32767 * math.sin(2 * math.pi * frequency * n / RATE)))
        for n in range(samples)
    )


def tone_level(audio: bytes, frequency: float) -> float:
    """How much of `audio` (mu-law) is a tone at `frequency`: its Goertzel power relative to a full-scale
    sine (about 0.09 for the 0.3 amplitude that `tone` sends, 0 for silence or other frequencies)."""
    samples = [_DECODE[b] / 32768 for b in audio]
    if not samples:
        return 0.0
    coefficient = 2 * math.cos(2 * math.pi * frequency / RATE)
    previous = before = 0.0
    for sample in samples:
        previous, before = sample + coefficient * previous - before, previous
    power = previous * previous + before * before - coefficient * previous * before
    return power / (len(samples) / 2) ** 2


def loudness(audio: bytes) -> float:
    """The RMS level of `audio` (mu-law) relative to full scale: 0 for digital silence, about 0.2 for the
    0.3 amplitude sine that `tone` sends, a few hundredths and more for music."""
    if not audio:
        return 0.0
    return math.sqrt(sum((_DECODE[b] / 32768) ** 2 for b in audio) / len(audio))


def sdp_audio_address(message: str) -> tuple[str, int]:
    """Where the SDP of a SIP message asks for audio to be sent."""
    connection, port = _SDP_CONNECTION.search(message), _SDP_AUDIO.search(message)
    if connection is None or port is None:
        raise ValueError("no audio address in this message's SDP")
    return connection[1], int(port[1])


class RtpPhone(asyncio.DatagramProtocol):
    """Sends a steady tone (or nothing when `frequency` is None) and keeps the payload it receives."""

    def __init__(self, ip: str, frequency: float | None) -> None:
        self.ip = ip
        self.frequency = frequency
        self.received = bytearray()
        # (arrival time on time.monotonic(), payload) of every audio packet, to measure any stretch of time.
        self.packets: list[tuple[float, bytes]] = []
        self._transport: asyncio.DatagramTransport | None = None
        self._sender: asyncio.Task[None] | None = None
        self._arrived = asyncio.Event()

    async def open(self) -> int:
        """Bind a free port on `ip`; returns it (for the SDP)."""
        transport, _ = await asyncio.get_running_loop().create_datagram_endpoint(
            lambda: self, local_addr=(self.ip, 0)
        )
        self._transport = transport
        port: int = transport.get_extra_info("sockname")[1]
        return port

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        if len(data) < 12 or data[0] >> 6 != 2:
            return
        header = 12 + 4 * (data[0] & 0x0F)
        if data[0] & 0x10 and len(data) >= header + 4:
            header += 4 + 4 * struct.unpack("!H", data[header + 2 : header + 4])[0]
        if data[1] & 0x7F == 0:  # PCMU only: telephone-event and comfort noise are no audio
            self.received += data[header:]
            self.packets.append((time.monotonic(), data[header:]))
            self._arrived.set()

    def send_to(self, address: tuple[str, int]) -> None:
        """Start sending, every 20 ms, to `address` (Asterisk's side of the call)."""
        if self.frequency is not None and self._sender is None:
            self._sender = asyncio.get_running_loop().create_task(self._send(address))

    async def _send(self, address: tuple[str, int]) -> None:
        assert self._transport is not None
        assert self.frequency is not None
        # A whole number of periods per packet would be nicer; any frequency works since the phase runs on.
        period = tone(self.frequency, RATE)  # one second, looped
        ssrc, sequence, timestamp = secrets.randbits(32), secrets.randbits(16), secrets.randbits(32)
        loop = asyncio.get_running_loop()
        start = loop.time()
        for n in range(10**6):
            offset = (n * PACKET_SAMPLES) % RATE
            payload = period[offset : offset + PACKET_SAMPLES]
            header = struct.pack(
                "!BBHII", 0x80, 0, (sequence + n) & 0xFFFF, (timestamp + n * 160) & 0xFFFFFFFF, ssrc
            )
            self._transport.sendto(header + payload, address)
            await asyncio.sleep(max(0.0, start + (n + 1) * 0.02 - loop.time()))

    async def hear(self, seconds: float, timeout: float = 15.0) -> bytes:
        """The next `seconds` of audio this phone receives (awaited as the packets come)."""
        start = len(self.received)
        async with asyncio.timeout(timeout):
            while len(self.received) - start < seconds * RATE:
                self._arrived.clear()
                await self._arrived.wait()
        return bytes(self.received[start:])

    def between(self, start: float, end: float) -> list[bytes]:
        """The payloads that arrived in [start, end) (time.monotonic())."""
        return [payload for t, payload in self.packets if start <= t < end]

    async def close(self) -> None:
        if self._sender is not None:
            self._sender.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sender
        if self._transport is not None:
            self._transport.close()
