/*
 * vars.h -- the template variables: one list that the template loader
 * checks names against, the docs describe, and the orchestrator fills.
 *
 * X(name, audiences, description): audiences is CUST (customer-facing
 * templates may use it) or INT (internal audiences only: l1, l2, chatbot,
 * engineering).  Internal templates may use every variable.  A name ending
 * in a list's element field (issues.headline) is valid inside
 * {{#issues}}...{{/issues}}.
 */
#ifndef FW_COMMS_VARS_H
#define FW_COMMS_VARS_H

#define COMMS_VAR_CUST 1
#define COMMS_VAR_INT 2

#define COMMS_VARS(X)                                                                              \
    /* brand and links, from configuration */                                                      \
    X("brand.name", CUST, "company or product name, e.g. Meow Mobile")                             \
    X("brand.sender_name", CUST, "who signs customer messages, e.g. Sam from Meow Mobile")         \
    X("brand.support_url", CUST, "help centre link")                                               \
    X("brand.app_name", CUST, "the app customers use, e.g. the Meow Mobile app")                   \
    X("unsubscribe_url", CUST, "one-click unsubscribe link for this customer")                     \
    /* the customer */                                                                             \
    X("customer.id", INT, "the customer key (event subject)")                                      \
    X("customer.name", CUST, "full name, or the email when unknown")                               \
    X("customer.first_name", CUST, "first word of the name, or 'there'")                           \
    X("customer.email", CUST, "email address")                                                     \
    X("customer.phone", CUST, "the customer's own number, as given")                                         \
    X("customer.phone_masked", CUST, "phone number with all but the last 4 digits masked")         \
    X("customer.zip", CUST, "ZIP code")                                                            \
    X("customer.plan", INT, "plan name")                                                           \
    X("customer.tier", INT, "tier, e.g. enterprise")                                               \
    X("customer.value", INT, "annual value in dollars")                                            \
    X("customer.timezone", INT, "IANA time zone")                                                  \
    /* the journey */                                                                              \
    X("order.id", CUST, "latest order id")                                                         \
    X("order.status", INT, "latest order status")                                                  \
    X("esim.status", INT, "eSIM status")                                                           \
    X("esim.individual_id", INT, "ConnectX individual id for eSIM actions")                        \
    X("payment.completed_at", CUST, "when payment completed (date)")                               \
    X("payment.status", INT, "completed, failed or pending")                                       \
    X("days_since_payment", CUST, "whole days since payment completed")                            \
    X("portin.status", INT, "port-in status")                                                      \
    X("portin.response", INT, "port-in response from the old carrier")                             \
    X("portin.carrier", CUST, "the carrier the number is moving from")                             \
    X("chat.topic", CUST, "topic of the latest chatbot conversation")                              \
    X("chat.summary", INT, "chatbot's summary of the escalated conversation")                      \
    X("chat.escalated_at", INT, "when the chatbot escalated")                                      \
    X("contacts", CUST, "number of tickets and chats in the last 7 days")                          \
    X("last_contact", INT, "channel, time and topic of the latest contact")                        \
    X("has_open_ticket", INT, "whether the customer has an open ticket")                           \
    X("open_ticket_id", INT, "id of the customer's open ticket")                                   \
    /* the outage (SIG-010) */                                                                     \
    X("outage.area", CUST, "the customer's affected ZIP code")                                     \
    X("outage.started_at", CUST, "when the outage started")                                        \
    X("outage.eta", CUST, "estimated restoration, or empty")                                       \
    X("outage.impact", CUST, "what is affected: calls, data, texts")                               \
    X("outage.resolved_at", CUST, "when service came back (the resolved update only)")             \
    /* known issues and maintenance (docs/known-issues.md); never the internal notes */          \
    X("known_issue.title", CUST, "the issue's customer-safe title")                                \
    X("known_issue.description", CUST, "what is happening, in customer-safe words")                \
    X("known_issue.workaround", CUST, "what the customer can do meanwhile, or empty")               \
    X("known_issue.status", CUST, "where the fix stands, in a sentence")                           \
    X("known_issue.eta", CUST, "when a fix is expected, or empty")                                 \
    X("known_issue.feature", CUST, "the affected feature, or empty")                               \
    X("maintenance.title", CUST, "the maintenance's title")                                        \
    X("maintenance.description", CUST, "what the work is and what the customer may notice")        \
    X("maintenance.workaround", CUST, "what to do meanwhile, or empty")                            \
    X("maintenance.feature", CUST, "the affected feature, or empty")                               \
    X("maintenance.starts_at", CUST, "when the window starts")                                     \
    X("maintenance.ends_at", CUST, "when the window ends")                                         \
    /* what this message is about */                                                               \
    X("issues", CUST, "list: one entry per problem this message addresses (merged signals)")       \
    X("issues.headline", CUST, "customer-facing one-line description of the problem")              \
    X("issues.signal", INT, "signal id")                                                           \
    X("issues.name", INT, "signal name")                                                           \
    X("issues.severity", INT, "signal severity")                                                   \
    X("merged", CUST, "true when the message addresses more than one problem")                     \
    X("detected_at", CUST, "when the problem was detected, human readable UTC")                    \
    X("response_within", INT, "reply target by severity (customers: next_update.within)")          \
    X("already_reached_out", CUST, "true when we wrote to the customer about this before")         \
    X("reached_out_at", CUST, "when we first wrote about it")                                      \
    /* facts the orchestrator recorded: each is absent when the fact does not exist */             \
    X("last_message.at", CUST, "when our last message about these problems went out")              \
    X("last_message.channel_name", CUST, "its channel in words: email, text message, ...")         \
    X("contacted_since.at", CUST, "when the customer contacted us after that message")             \
    X("contacted_since.kind", CUST, "how: ticket or chat")                                         \
    X("next_update.within", CUST, "time to a follow-up really scheduled, e.g. 4 hours")            \
    X("tone.level", INT, "1 to 4: the customer's touch count band")                                \
    X("tone.helpful", CUST, "1st touch: helpful, proactive")                                       \
    X("tone.empathetic", CUST, "2nd touch: empathetic, specific")                                  \
    X("tone.apologetic", CUST, "3rd touch: apologetic, taking ownership")                          \
    X("tone.urgent", CUST, "4th touch or more: urgent, concrete commitment")                       \
    /* internal alert fields */                                                                    \
    X("signal.id", INT, "the main signal's id")                                                    \
    X("signal.name", INT, "its name")                                                              \
    X("signal.severity", INT, "CRITICAL, HIGH, MEDIUM or LOW")                                     \
    X("signal.team", INT, "owning team")                                                           \
    X("signal.root_cause", INT, "root cause key")                                                  \
    X("signal.description", INT, "what the signal means")                                          \
    X("priority", INT, "ticket priority: urgent, high, normal, low")                               \
    X("group", INT, "ticket group for the signal's team")                                          \
    X("sla.respond_within", INT, "respond to the customer within")                                 \
    X("sla.followup_within", INT, "follow up to confirm resolution within")                        \
    X("sentiment_risk", INT, "Low, Medium or High from touches and duration")                      \
    X("draft.subject", INT, "subject of the draft customer message")                               \
    X("draft.text", INT, "text of the draft customer message")                                     \
    X("ticket_link", INT, "link to the L1 ticket, when known")                                     \
    X("escalation.step", INT, "ladder step that caused this message")                              \
    /* incidents (systemic alerts) */                                                              \
    X("incident.id", INT, "incident number")                                                       \
    X("incident.count", INT, "number of affected customers")                                       \
    X("incident.window", INT, "the signal's incident window, e.g. 24h")                            \
    X("incident.factor_key", INT, "common factor key, e.g. customer.carrier")                      \
    X("incident.factor_value", INT, "common factor value, e.g. Verizon")                           \
    X("incident.customers", INT, "list of affected customers")                                     \
    X("incident.customers.customer", INT, "customer key")                                          \
    X("incident.customers.order", INT, "order id")                                                 \
    X("incident.customers.status", INT, "status of the signal's subject")                          \
    X("incident.customers.since", INT, "how long it has been firing")                              \
    /* post-ticket follow-up (seed 004) */                                                         \
    X("ticket.id", CUST, "the resolved ticket's id")                                               \
    X("ticket.subject", CUST, "its subject")                                                       \
    X("ticket.resolution", CUST, "how it was resolved")                                            \
    X("ticket.severity", INT, "its severity")                                                      \
    X("ticket.opened_at", CUST, "when it was opened")                                              \
    X("ticket.duration", CUST, "how long it was open, e.g. 4 days")                                \
    X("followup.level", INT, "acknowledgment, satisfaction_check or relationship_repair")          \
    X("followup.reminder_in", INT, "when the reminder task is due, e.g. 3 days")

#endif
