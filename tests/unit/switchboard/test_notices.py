"""Short spoken notices to listeners' phones: a debrief request reaches every supervisor on duty, saying
whose request it is by short code; a shift-limit notice reaches the listener."""

from __future__ import annotations

from datetime import UTC, datetime

from helpline_rig import Helpline

from helpline_pbx.core import NotifyListener, RequestDebrief
from helpline_pbx.roster.debriefs import Debriefs


async def test_a_debrief_request_calls_each_supervisor_on_duty_with_the_listeners_code(
    helpline: Helpline,
) -> None:
    [camille] = await helpline.add_listeners("camille")
    now = datetime.now(UTC)
    on_duty = await helpline.roster.add_listener("Sandra", "sandra", "supervisor")
    await helpline.roster.set_presence(on_duty.id, "paused", reason="supervising", now=now)
    await helpline.roster.add_listener("Off", "off", "supervisor")  # off duty: not called
    board = await helpline.start()
    board.executor.submit(RequestDebrief(camille.id, "call-1"))
    await helpline.settled()

    calls = helpline.asterisk.named("originate_to_dialplan")
    assert [(c.args[1], c.args[2], c.args[3], c.args[4]) for c in calls] == [
        ("PJSIP/sandra", "listener-notice", "debrief-request", {"HELPLINE_NOTICE_CODE": camille.code})
    ]
    [request] = await Debriefs(helpline.roster.engine).open()
    assert (request.listener_id, request.call_id) == (camille.id, "call-1")


async def test_a_shift_limit_notice_calls_the_listener(helpline: Helpline) -> None:
    [camille] = await helpline.add_listeners("camille")
    board = await helpline.start()
    board.executor.submit(NotifyListener(camille.id, camille.endpoint, "shift-limit"))
    await helpline.settled()
    [call] = helpline.asterisk.named("originate_to_dialplan")
    assert call.args[1:5] == ("PJSIP/camille", "listener-notice", "shift-limit", None)
