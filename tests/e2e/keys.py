"""Phones that key digits during a call, as SIPp scenarios derived from the plain ones.

A caller keys RFC 2833 events (SIPp's own recordings of each key); a listener keys SIP INFO
(application/dtmf-relay), which Asterisk takes from any phone. SIPp's recordings all carry one RTP
timestamp, so keys in quick succession could be heard as one: a caller's keys are spaced by `gap_ms`.
"""

from __future__ import annotations

from pathlib import Path

from tests.e2e.conftest import Sipp
from tests.e2e.sipp import SippProcess

DTMF_PCAPS = "/usr/share/sip-tester"  # shipped by the sip-tester package
PCAP_NAMES = {"*": "star", "#": "pound"}
SCENARIOS = Path(__file__).parents[1] / "sipp"


def keying_caller(sipp: Sipp, keys: str, *, after_ms: int = 1500, gap_ms: int = 1200) -> SippProcess:
    """A caller who keys `keys` `after_ms` after the line answered, then waits for the line to hang up."""
    # The caller's looped audio (which told the line their audio arrives) stops before the first key: its
    # packets, interleaved with the recordings' own sequence numbers and source, made Asterisk hear a key
    # twice or not at all now and then.
    plays = (
        f'  <pause milliseconds="{after_ms}" />\n'
        + '  <nop><action><exec rtp_stream="pause" /></action></nop>\n'
    )
    plays += "".join(
        (f'  <pause milliseconds="{gap_ms}" />\n' if n else "")
        + f'  <nop><action><exec play_pcap_audio="{DTMF_PCAPS}/dtmf_2833_{PCAP_NAMES.get(k, k)}.pcap" />'
        "</action></nop>\n"
        for n, k in enumerate(keys)
    )
    scenario = (
        (SCENARIOS / "caller.xml")
        .read_text(encoding="utf-8")
        .replace(
            "m=audio [media_port] RTP/AVP 0\n      a=rtpmap:0 PCMU/8000",
            "m=audio [media_port] RTP/AVP 0 101\n      a=rtpmap:0 PCMU/8000\n"
            "      a=rtpmap:101 telephone-event/8000\n      a=fmtp:101 0-16",
        )
        .replace('  <label id="in_call" />', plays + '  <label id="in_call" />', 1)
    )
    assert scenario.count("dtmf_2833") == len(keys)
    assert "telephone-event" in scenario
    sipp.workdir.mkdir(parents=True, exist_ok=True)
    path = sipp.workdir / f"caller_keys_{len(sipp.processes)}.xml"
    path.write_text(scenario, encoding="utf-8")
    proc = SippProcess(
        path,
        workdir=sipp.workdir,
        local_ip=sipp.asterisk.trunk_ip,
        remote=sipp.remote,
        service=sipp.line,
        calls=1,
        lifetime=120,
    )
    sipp.processes.append(proc)
    return proc.start()


def keying_listener(sipp: Sipp, keys: str, name: str) -> Path:
    """A listener's phone scenario that answers, keys `keys` (SIP INFO) a moment into the call, then stays
    until the -d pause ends or the other side hangs up."""
    infos = "".join(
        f"""  <pause milliseconds="700" />
  <send retrans="500">
    <![CDATA[

      INFO [next_url] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]-k{n}
      [routes]
      From:[$invite_to];tag=[pid]SIPpTag01[call_number]
      To:[$invite_from]
      Call-ID: [call_id]
      CSeq: {n + 1} INFO
      Max-Forwards: 70
      Content-Type: application/dtmf-relay
      Content-Length: [len]

      Signal={key}
      Duration=160

    ]]>
  </send>
  <recv response="200" />
"""
        for n, key in enumerate(keys)
    )
    scenario = (
        (SCENARIOS / "listener_answer_hangup.xml")
        .read_text(encoding="utf-8")
        .replace('  <recv request="ACK" rtd="true" />\n', '  <recv request="ACK" rtd="true" />\n' + infos, 1)
        .replace("CSeq: 1 BYE", "CSeq: 20 BYE")
    )
    assert scenario.count(" INFO\n") == len(keys)
    sipp.workdir.mkdir(parents=True, exist_ok=True)
    path = sipp.workdir / f"{name}.xml"
    path.write_text(scenario, encoding="utf-8")
    return path
