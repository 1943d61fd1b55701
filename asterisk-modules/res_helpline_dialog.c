/*
 * res_helpline_dialog: two things a trunk's SIP dialog needs that no Asterisk 22 module does.
 *
 * 1. An in-dialog INFO that no loaded module answers (a content type nobody knows) gets a final response:
 *    415, with the types we take in Accept. res_pjsip_session claims every in-dialog request once any
 *    session supplement exists, and none answers an unknown INFO: the carrier would retransmit it for
 *    32 s and may end the call.
 * 2. The ACK of our 200 OK is made visible to the dialplan: the caller's channel gets HELPLINE_ACKED=1.
 *    Neither the dialplan nor ARI can otherwise tell a leg whose sender never acknowledged our answer
 *    (a sender that saw the 200 OK, streams audio and never ACKs) from a real call, and such a leg must
 *    not be offered to a listener.
 *
 * It logs nothing: what it sees is a caller's dialog.
 *
 * Why no res_pjsip headers: Debian's Asterisk ships its pjproject built in, without pjproject's headers,
 * and res_pjsip.h cannot be compiled without them. This module therefore declares the few functions it
 * calls itself, treats every pjproject object as opaque (only pointers pass through it), and mirrors the
 * two Asterisk structures it must share (a session supplement, and the head of a session, whose leading
 * fields are plain pointers). Those layouts are Asterisk 22's: scripts/asterisk.sh refuses to build the
 * module against headers that lay either out otherwise, and the module refuses to load on another major
 * version, so a root built on a later Asterisk fails at start-up (modules.conf requires the module)
 * rather than misbehaving.
 */

#include "asterisk.h"

#include <limits.h>
#include <string.h>

#include "asterisk/ast_version.h"
#include "asterisk/channel.h"
#include "asterisk/linkedlists.h"
#include "asterisk/module.h"
#include "asterisk/pbx.h"
#include "asterisk/utils.h"

/* pjproject's objects, opaque here. */
struct pjsip_rx_data;
struct pjsip_tx_data;
struct pjsip_dialog;
struct pjsip_transaction;
struct ast_sip_endpoint;
struct ast_sip_contact;

/* The head of Asterisk 22's struct ast_sip_session, up to the channel (res_pjsip_session.h). */
struct helpline_session_head {
	char exten[AST_MAX_EXTENSION];
	struct ast_sip_endpoint *endpoint;
	struct ast_sip_contact *contact;
	void *inv_session;
	struct ast_channel *channel;
};

/* Asterisk 22's struct ast_sip_session_supplement (res_pjsip_session.h), field for field. */
struct helpline_supplement {
	struct ast_module *module;
	const char *method;
	int priority;
	void (*session_begin)(struct helpline_session_head *session);
	void (*session_end)(struct helpline_session_head *session);
	void (*session_destroy)(struct helpline_session_head *session);
	int (*incoming_request)(struct helpline_session_head *session, struct pjsip_rx_data *rdata);
	void (*incoming_response)(struct helpline_session_head *session, struct pjsip_rx_data *rdata);
	void (*outgoing_request)(struct helpline_session_head *session, struct pjsip_tx_data *tdata);
	void (*outgoing_response)(struct helpline_session_head *session, struct pjsip_tx_data *tdata);
	struct helpline_supplement *next;
	int response_priority;
	int (*session_create)(struct ast_sip_endpoint *endpoint, struct ast_sip_contact *contact,
		const char *location, const char *request_user, void *req_topology);
	/* Room to spare: Asterisk copies a supplement with its own sizeof for each session. */
	void *spare[8];
};

/* Visited after every other supplement (AST_SIP_SUPPLEMENT_PRIORITY_LAST). */
#define HELPLINE_PRIORITY_LAST INT_MAX

/* res_pjsip (res_pjsip.so). */
void ast_sip_session_register_supplement_with_module(struct ast_module *module, struct helpline_supplement *supplement);
void ast_sip_session_unregister_supplement(struct helpline_supplement *supplement);
int ast_sip_add_header(struct pjsip_tx_data *tdata, const char *name, const char *value);

/* pjsip (libasteriskpj); a pj_status_t is an int, 0 on success. */
struct pjsip_dialog *pjsip_rdata_get_dlg(struct pjsip_rx_data *rdata);
struct pjsip_transaction *pjsip_rdata_get_tsx(struct pjsip_rx_data *rdata);
int pjsip_dlg_create_response(struct pjsip_dialog *dlg, struct pjsip_rx_data *rdata, int st_code,
	const void *st_text, struct pjsip_tx_data **tdata);
int pjsip_dlg_send_response(struct pjsip_dialog *dlg, struct pjsip_transaction *tsx, struct pjsip_tx_data *tdata);

/* What a 415 tells the far end we take in an INFO (res_pjsip_dtmf_info's types). */
#define ACCEPTED_INFO_TYPES "application/dtmf-relay, application/dtmf"

/*
 * An INFO reaches this, the last of the session's supplements, only if no module before it took it:
 * res_pjsip_dtmf_info (DTMF, hook flash) and res_pjsip_empty_info (no body) answer and stop the list.
 * One module answers and lets the list go on, res_pjsip_sdp_rtp for a video update request
 * (media_control+xml, which needs video, which no endpoint of the line offers); our second response is
 * then refused by pjsip's transaction, which sends only its first final response (a new one in the
 * Completed or Terminated state is ignored). The content type is never read: pjproject's headers,
 * which say where it is, are not available (see the top).
 */
static int info_unanswered(struct helpline_session_head *session, struct pjsip_rx_data *rdata)
{
	struct pjsip_dialog *dlg = pjsip_rdata_get_dlg(rdata);
	struct pjsip_transaction *tsx = pjsip_rdata_get_tsx(rdata);
	struct pjsip_tx_data *tdata = NULL;

	if (!dlg || !tsx || pjsip_dlg_create_response(dlg, rdata, 415, NULL, &tdata) || !tdata) {
		return 0;
	}
	/* RFC 3261 21.4.13: a 415 lists what the server accepts. */
	ast_sip_add_header(tdata, "Accept", ACCEPTED_INFO_TYPES);
	pjsip_dlg_send_response(dlg, tsx, tdata);
	return 1;
}

static int ack_incoming_request(struct helpline_session_head *session, struct pjsip_rx_data *rdata)
{
	if (session->channel) {
		pbx_builtin_setvar_helper(session->channel, "HELPLINE_ACKED", "1");
	}
	return 0;
}

/* After every other, res_pjsip_empty_info's included (same priority, loaded before us: .requires). */
static struct helpline_supplement info_last_supplement = {
	.method = "INFO",
	.priority = HELPLINE_PRIORITY_LAST,
	.incoming_request = info_unanswered,
};

static struct helpline_supplement ack_supplement = {
	.method = "ACK",
	.priority = HELPLINE_PRIORITY_LAST,
	.incoming_request = ack_incoming_request,
};

static int load_module(void)
{
	const char *version = ast_get_version();

	/* The mirrored layouts are Asterisk 22's (Debian's package names it "22.x.y"). */
	if (strncmp(version, "22.", 3)) {
		ast_log(LOG_ERROR, "res_helpline_dialog is built for Asterisk 22, not %s\n", version);
		return AST_MODULE_LOAD_DECLINE;
	}
	ast_sip_session_register_supplement_with_module(AST_MODULE_SELF, &info_last_supplement);
	ast_sip_session_register_supplement_with_module(AST_MODULE_SELF, &ack_supplement);
	return AST_MODULE_LOAD_SUCCESS;
}

static int unload_module(void)
{
	ast_sip_session_unregister_supplement(&ack_supplement);
	ast_sip_session_unregister_supplement(&info_last_supplement);
	return 0;
}

AST_MODULE_INFO(ASTERISK_GPL_KEY, AST_MODFLAG_LOAD_ORDER, "helpline-pbx: unknown in-dialog INFO answered, ACK marked",
	.support_level = AST_MODULE_SUPPORT_EXTENDED,
	.load = load_module,
	.unload = unload_module,
	.load_pri = AST_MODPRI_DEFAULT,
	.requires = "res_pjsip,res_pjsip_session,res_pjsip_empty_info",
);
