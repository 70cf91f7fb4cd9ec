/*
 * vars.h -- the template variables: one list that the template loader
 * checks names against, the docs describe, and the orchestrator fills.
 *
 * X(id, name, audiences, description): id names the variable in C (COMMS_V_<id>,
 * comms.h), name is its dotted name in templates; audiences is CUST (customer-facing
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
    X(brand_name, "brand.name", CUST, "company or product name, e.g. Meow Mobile")                 \
    X(brand_sender_name, "brand.sender_name", CUST,                                                \
      "who signs customer messages, e.g. Sam from Meow Mobile")                                    \
    X(brand_support_url, "brand.support_url", CUST, "help centre link")                            \
    X(brand_app_name, "brand.app_name", CUST, "the app customers use, e.g. the Meow Mobile app")   \
    X(unsubscribe_url, "unsubscribe_url", CUST, "one-click unsubscribe link for this customer")    \
    /* the customer */                                                                             \
    X(customer_id, "customer.id", INT, "the customer key (event subject)")                         \
    X(customer_name, "customer.name", CUST, "full name, or the email when unknown")                \
    X(customer_first_name, "customer.first_name", CUST, "first word of the name, or 'there'")      \
    X(customer_email, "customer.email", CUST, "email address")                                     \
    X(customer_phone, "customer.phone", CUST, "the customer's own number, as given")               \
    X(customer_phone_masked, "customer.phone_masked", CUST,                                        \
      "phone number with all but the last 4 digits masked")                                        \
    X(customer_zip, "customer.zip", CUST, "ZIP code")                                              \
    X(customer_plan, "customer.plan", INT, "plan name")                                            \
    X(customer_tier, "customer.tier", INT, "tier, e.g. enterprise")                                \
    X(customer_value, "customer.value", INT, "annual value in dollars")                            \
    X(customer_timezone, "customer.timezone", INT, "IANA time zone")                               \
    /* the journey */                                                                              \
    X(order_id, "order.id", CUST, "latest order id")                                               \
    X(order_status, "order.status", INT, "latest order status")                                    \
    X(esim_status, "esim.status", INT, "eSIM status")                                              \
    X(esim_individual_id, "esim.individual_id", INT, "ConnectX individual id for eSIM actions")    \
    X(payment_completed_at, "payment.completed_at", CUST, "when payment completed (date)")         \
    X(payment_status, "payment.status", INT, "completed, failed or pending")                       \
    X(days_since_payment, "days_since_payment", CUST, "whole days since payment completed")        \
    X(portin_status, "portin.status", INT, "port-in status")                                       \
    X(portin_response, "portin.response", INT, "port-in response from the old carrier")            \
    X(portin_carrier, "portin.carrier", CUST, "the carrier the number is moving from")             \
    X(chat_topic, "chat.topic", CUST, "topic of the latest chatbot conversation")                  \
    X(chat_summary, "chat.summary", INT, "chatbot's summary of the escalated conversation")        \
    X(chat_escalated_at, "chat.escalated_at", INT, "when the chatbot escalated")                   \
    X(contacts, "contacts", CUST, "number of tickets and chats in the last 7 days")                \
    X(last_contact, "last_contact", INT, "channel, time and topic of the latest contact")          \
    X(has_open_ticket, "has_open_ticket", INT, "whether the customer has an open ticket")          \
    X(open_ticket_id, "open_ticket_id", INT, "id of the customer's open ticket")                   \
    /* the outage (SIG-010) */                                                                     \
    X(outage_area, "outage.area", CUST, "the customer's affected ZIP code")                        \
    X(outage_started_at, "outage.started_at", CUST, "when the outage started")                     \
    X(outage_eta, "outage.eta", CUST, "estimated restoration, or empty")                           \
    X(outage_impact, "outage.impact", CUST, "what is affected: calls, data, texts")                \
    X(outage_resolved_at, "outage.resolved_at", CUST,                                              \
      "when service came back (the resolved update only)")                                         \
    /* known issues and maintenance (docs/known-issues.md); never the internal notes */            \
    X(known_issue_title, "known_issue.title", CUST, "the issue's customer-safe title")             \
    X(known_issue_description, "known_issue.description", CUST,                                    \
      "what is happening, in customer-safe words")                                                 \
    X(known_issue_workaround, "known_issue.workaround", CUST,                                      \
      "what the customer can do meanwhile, or empty")                                              \
    X(known_issue_status, "known_issue.status", CUST, "where the fix stands, in a sentence")       \
    X(known_issue_eta, "known_issue.eta", CUST, "when a fix is expected, or empty")                \
    X(known_issue_feature, "known_issue.feature", CUST, "the affected feature, or empty")          \
    X(maintenance_title, "maintenance.title", CUST, "the maintenance's title")                     \
    X(maintenance_description, "maintenance.description", CUST,                                    \
      "what the work is and what the customer may notice")                                         \
    X(maintenance_workaround, "maintenance.workaround", CUST, "what to do meanwhile, or empty")    \
    X(maintenance_feature, "maintenance.feature", CUST, "the affected feature, or empty")          \
    X(maintenance_starts_at, "maintenance.starts_at", CUST, "when the window starts")              \
    X(maintenance_ends_at, "maintenance.ends_at", CUST, "when the window ends")                    \
    /* what this message is about */                                                               \
    X(issues, "issues", CUST,                                                                      \
      "list: one entry per problem this message addresses (merged signals)")                       \
    X(issues_headline, "issues.headline", CUST,                                                    \
      "customer-facing one-line description of the problem")                                       \
    X(issues_signal, "issues.signal", INT, "signal id")                                            \
    X(issues_name, "issues.name", INT, "signal name")                                              \
    X(issues_severity, "issues.severity", INT, "signal severity")                                  \
    X(merged, "merged", CUST, "true when the message addresses more than one problem")             \
    X(detected_at, "detected_at", CUST, "when the problem was detected, human readable UTC")       \
    X(response_within, "response_within", INT,                                                     \
      "reply target by severity (customers: next_update.within)")                                  \
    X(already_reached_out, "already_reached_out", CUST,                                            \
      "true when we wrote to the customer about this before")                                      \
    X(reached_out_at, "reached_out_at", CUST, "when we first wrote about it")                      \
    /* facts the orchestrator recorded: each is absent when the fact does not exist */             \
    X(last_message_at, "last_message.at", CUST,                                                    \
      "when our last message about these problems went out")                                       \
    X(last_message_channel_name, "last_message.channel_name", CUST,                                \
      "its channel in words: email, text message, ...")                                            \
    X(contacted_since_at, "contacted_since.at", CUST,                                              \
      "when the customer contacted us after that message")                                         \
    X(contacted_since_kind, "contacted_since.kind", CUST, "how: ticket or chat")                   \
    X(next_update_within, "next_update.within", CUST,                                              \
      "time to a follow-up really scheduled, e.g. 4 hours")                                        \
    X(tone_level, "tone.level", INT, "1 to 4: the customer's touch count band")                    \
    X(tone_helpful, "tone.helpful", CUST, "1st touch: helpful, proactive")                         \
    X(tone_empathetic, "tone.empathetic", CUST, "2nd touch: empathetic, specific")                 \
    X(tone_apologetic, "tone.apologetic", CUST, "3rd touch: apologetic, taking ownership")         \
    X(tone_urgent, "tone.urgent", CUST, "4th touch or more: urgent, concrete commitment")          \
    /* internal alert fields */                                                                    \
    X(signal_id, "signal.id", INT, "the main signal's id")                                         \
    X(signal_name, "signal.name", INT, "its name")                                                 \
    X(signal_severity, "signal.severity", INT, "CRITICAL, HIGH, MEDIUM or LOW")                    \
    X(signal_team, "signal.team", INT, "owning team")                                              \
    X(signal_root_cause, "signal.root_cause", INT, "root cause key")                               \
    X(signal_description, "signal.description", INT, "what the signal means")                      \
    X(priority, "priority", INT, "ticket priority: urgent, high, normal, low")                     \
    X(group, "group", INT, "ticket group for the signal's team")                                   \
    X(sla_respond_within, "sla.respond_within", INT, "respond to the customer within")             \
    X(sla_followup_within, "sla.followup_within", INT, "follow up to confirm resolution within")   \
    X(sentiment_risk, "sentiment_risk", INT, "Low, Medium or High from touches and duration")      \
    X(draft_subject, "draft.subject", INT, "subject of the draft customer message")                \
    X(draft_text, "draft.text", INT, "text of the draft customer message")                         \
    X(ticket_link, "ticket_link", INT, "link to the L1 ticket, when known")                        \
    X(escalation_step, "escalation.step", INT, "ladder step that caused this message")             \
    /* incidents (systemic alerts) */                                                              \
    X(incident_id, "incident.id", INT, "incident number")                                          \
    X(incident_count, "incident.count", INT, "number of affected customers")                       \
    X(incident_window, "incident.window", INT, "the signal's incident window, e.g. 24h")           \
    X(incident_factor_key, "incident.factor_key", INT, "common factor key, e.g. customer.carrier") \
    X(incident_factor_value, "incident.factor_value", INT, "common factor value, e.g. Verizon")    \
    X(incident_customers, "incident.customers", INT, "list of affected customers")                 \
    X(incident_customers_customer, "incident.customers.customer", INT, "customer key")             \
    X(incident_customers_order, "incident.customers.order", INT, "order id")                       \
    X(incident_customers_status, "incident.customers.status", INT,                                 \
      "status of the signal's subject")                                                            \
    X(incident_customers_since, "incident.customers.since", INT, "how long it has been firing")    \
    /* post-ticket follow-up (seed 004) */                                                         \
    X(ticket_id, "ticket.id", CUST, "the resolved ticket's id")                                    \
    X(ticket_subject, "ticket.subject", CUST, "its subject")                                       \
    X(ticket_resolution, "ticket.resolution", CUST, "how it was resolved")                         \
    X(ticket_severity, "ticket.severity", INT, "its severity")                                     \
    X(ticket_opened_at, "ticket.opened_at", CUST, "when it was opened")                            \
    X(ticket_duration, "ticket.duration", CUST, "how long it was open, e.g. 4 days")               \
    X(followup_level, "followup.level", INT,                                                       \
      "acknowledgment, satisfaction_check or relationship_repair")                                 \
    X(followup_reminder_in, "followup.reminder_in", INT,                                          \
      "when the reminder task is due, e.g. 3 days")

#endif
