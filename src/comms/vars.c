/*
 * vars.c -- the variable table of vars.h as data: the per-audience name
 * lists, lookups by name and by id (comms_var_id, a variable's list and a
 * list's fields, for the compiler and typed contexts), the tone helper and
 * a sample context.
 *
 * Everything here is generated from COMMS_VARS, so vars.h stays the one
 * place a variable is added.  The sample context has a value for every
 * variable (a unit test holds it to that), which is what lets tests and
 * docs render every template without a live customer.
 */
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "comms/comms.h"
#include "comms/comms_int.h"
#include "comms/vars.h"
#include "util/util.h"

const struct comms_var comms_vars[] = {
#define COMMS__VAR_ENTRY(id, name, who, desc) {name, COMMS_VAR_##who, desc},
    COMMS_VARS(COMMS__VAR_ENTRY)
#undef COMMS__VAR_ENTRY
        {NULL, 0, NULL}};

/* Name lists for comms_variables: all of them, and the customer-facing ones. */
static const char *const all_names[] = {
#define COMMS__NAME(id, name, who, desc) name,
    COMMS_VARS(COMMS__NAME)
#undef COMMS__NAME
        NULL};

#define COMMS__IF_CUST_CUST(name) name,
#define COMMS__IF_CUST_INT(name)
#define COMMS__CUST_NAME(id, name, who, desc) COMMS__IF_CUST_##who(name)
static const char *const customer_names[] = {COMMS_VARS(COMMS__CUST_NAME) NULL};
#undef COMMS__CUST_NAME

const char *const *comms_variables(const char *audience) {
    if (!audience)
        return NULL;
    if (!strcmp(audience, "customer"))
        return customer_names;
#define COMMS__INTERNAL(name)                                                                      \
    if (!strcmp(audience, #name))                                                                  \
        return all_names;
    COMMS_AUDIENCES(COMMS__INTERNAL)
#undef COMMS__INTERNAL
    return NULL;
}

/* The table scans: tab_init derives the hashed lookups below from them. */
static const struct comms_var *var_find_scan(const char *name)
{
    for (const struct comms_var *v = comms_vars; v->name; v++)
        if (!strcmp(v->name, name))
            return v;
    return NULL;
}

static int var_is_list_scan(const char *name)
{
    size_t n = strlen(name);
    if (!var_find_scan(name))
        return 0;
    for (const struct comms_var *v = comms_vars; v->name; v++)
        if (!strncmp(v->name, name, n) && v->name[n] == '.')
            return 1;
    return 0;
}

/* ---- ids: names, lists and their fields, derived once ---- */

#define NAME_SLOTS 512 /* open addressing, a power of two, over twice COMMS_NVARS */

static struct {
    int16_t list[COMMS_NVARS];     /* the list a variable is a field of, or -1 */
    uint16_t nfields[COMMS_NVARS]; /* fields of a list variable */
    int16_t slot[NAME_SLOTS];      /* id + 1 by name hash; 0 is empty */
    uint8_t is_list[COMMS_NVARS];  /* has fields (a name "<it>.<field>" is a variable) */
} tab;
static pthread_once_t tab_once = PTHREAD_ONCE_INIT;

static uint32_t name_hash(const char *s, size_t n)
{
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)s[i]) * 16777619u;
    return h;
}

static void tab_init(void)
{
    for (int v = 0; v < COMMS_NVARS; v++) {
        const char *name = comms_vars[v].name;
        size_t n = strlen(name), best = 0;
        tab.list[v] = -1;
        for (int l = 0; l < COMMS_NVARS; l++) {
            size_t ln = strlen(comms_vars[l].name);
            if (ln < n && ln > best && name[ln] == '.' && !memcmp(name, comms_vars[l].name, ln) &&
                var_is_list_scan(comms_vars[l].name)) {
                best = ln;
                tab.list[v] = (int16_t)l;
            }
        }
        if (tab.list[v] >= 0)
            tab.nfields[tab.list[v]]++;
        tab.is_list[v] = (uint8_t)var_is_list_scan(name);
        uint32_t h = name_hash(name, n) & (NAME_SLOTS - 1);
        while (tab.slot[h])
            h = (h + 1) & (NAME_SLOTS - 1);
        tab.slot[h] = (int16_t)(v + 1);
    }
    /* Elements are arrays of fields in table order: each list's fields must follow it. */
    for (int v = 0; v < COMMS_NVARS; v++)
        for (int k = tab.list[v] + 1; tab.list[v] >= 0 && k <= v; k++)
            if (tab.list[k] != tab.list[v])
                abort(); /* vars.h: a list's fields are not right after it */
}

int comms__var_list(int id)
{
    pthread_once(&tab_once, tab_init);
    return id >= 0 && id < COMMS_NVARS ? tab.list[id] : -1;
}

size_t comms__var_nfields(int list)
{
    pthread_once(&tab_once, tab_init);
    return list >= 0 && list < COMMS_NVARS ? tab.nfields[list] : 0;
}

int comms_var_id(const char *name, size_t n)
{
    pthread_once(&tab_once, tab_init);
    for (uint32_t h = name_hash(name, n) & (NAME_SLOTS - 1); tab.slot[h];
         h = (h + 1) & (NAME_SLOTS - 1)) {
        int v = tab.slot[h] - 1;
        if (!strncmp(comms_vars[v].name, name, n) && comms_vars[v].name[n] == '\0')
            return v;
    }
    return -1;
}

/* Hashed: the compiler asks these for every tag of every template at start-up. */
const struct comms_var *comms_var_find(const char *name)
{
    int id = comms_var_id(name, strlen(name));
    return id >= 0 ? &comms_vars[id] : NULL;
}

int comms_var_is_list(const char *name)
{
    int id = comms_var_id(name, strlen(name));
    return id >= 0 && tab.is_list[id];
}

/* ---- contexts ---- */

/* ctx[a][b]... for a dotted name, creating objects on the way; sets the last part to val (stolen).
 */
static void set_path(json_t *ctx, const char *name, json_t *val) {
    const char *dot;
    json_t *o = ctx;
    while ((dot = strchr(name, '.'))) {
        json_t *next = json_object_getn(o, name, (size_t)(dot - name));
        if (!json_is_object(next)) {
            next = json_object();
            json_object_setn_new(o, name, (size_t)(dot - name), next);
        }
        o = next;
        name = dot + 1;
    }
    json_object_set_new(o, name, val);
}

void comms_context_set_tone(json_t *ctx, int level) {
    static const char *const names[] = {"tone.helpful", "tone.empathetic", "tone.apologetic",
                                        "tone.urgent"};
    if (level < 1)
        level = 1;
    if (level > 4)
        level = 4;
    set_path(ctx, "tone.level", json_integer(level));
    for (int i = 0; i < 4; i++)
        set_path(ctx, names[i], json_boolean(i == level - 1));
}

/*
 * Sample values as JSON text, one per variable that is not a list's field
 * (a list's sample holds its fields).  Plausible, distinct values: a test
 * looks for internal ones in customer text, so they must not be words a
 * customer message would use anyway.
 */
static const struct {
    const char *name;
    const char *json;
} samples[] = {
    {"brand.name", "\"Meow Mobile\""},
    {"brand.sender_name", "\"Sam from Meow Mobile\""},
    {"brand.support_url", "\"https://help.meowmobile.example\""},
    {"brand.app_name", "\"the Meow Mobile app\""},
    {"unsubscribe_url", "\"https://meowmobile.example/u/3f9a1c\""},
    {"customer.id", "\"cus_8812\""},
    {"customer.name", "\"Jodi Example\""},
    {"customer.first_name", "\"Jodi\""},
    {"customer.email", "\"jodi@example.com\""},
    {"customer.phone", "\"+15125550187\""},
    {"customer.phone_masked", "\"***-***-0187\""},
    {"customer.zip", "\"78701\""},
    {"customer.plan", "\"Unlimited Plus 5G\""},
    {"customer.tier", "\"consumer-standard\""},
    {"customer.value", "540"},
    {"customer.timezone", "\"America/Chicago\""},
    {"order.id", "\"ORD-20931\""},
    {"order.status", "\"AWAITING_ACTIVATION\""},
    {"esim.status", "\"FAILED\""},
    {"esim.individual_id", "\"IND-774120\""},
    {"payment.completed_at", "\"March 3, 2025\""},
    {"payment.status", "\"completed\""},
    {"days_since_payment", "3"},
    {"portin.status", "\"REJECTED_BY_CARRIER\""},
    {"portin.response", "\"6C: account number mismatch\""},
    {"portin.carrier", "\"Verizon\""},
    {"chat.topic", "\"eSIM activation\""},
    {"chat.summary", "\"Bot could not reissue the QR code; customer asked for a person\""},
    {"chat.escalated_at", "\"2025-03-06 14:05 UTC\""},
    {"contacts", "5"},
    {"last_contact", "\"chat, 2025-03-06 14:05 UTC, eSIM activation\""},
    {"has_open_ticket", "true"},
    {"open_ticket_id", "\"ZD-48213\""},
    {"outage.area", "\"78701\""},
    {"outage.started_at", "\"9:40 AM CT\""},
    {"outage.eta", "\"around 3 PM CT\""},
    {"outage.impact", "\"calls and mobile data\""},
    {"outage.resolved_at", "\"Mar 6, 2025 at 3:10 PM (Chicago time)\""},
    {"known_issue.title", "\"Hotspot drops after 10 minutes\""},
    {"known_issue.description", "\"Hotspot connections may drop after about 10 minutes.\""},
    {"known_issue.workaround", "\"Turn hotspot off and on again.\""},
    {"known_issue.status", "\"We've found the cause and are fixing it.\""},
    {"known_issue.eta", "\"Mar 7, 2025 at 6:00 PM (Chicago time)\""},
    {"known_issue.feature", "\"hotspot\""},
    {"maintenance.title", "\"Network upgrade\""},
    {"maintenance.description", "\"Data may pause for up to 5 minutes.\""},
    {"maintenance.workaround", "\"Use Wi-Fi if you need data in that hour.\""},
    {"maintenance.feature", "\"data\""},
    {"maintenance.starts_at", "\"Mar 9, 2025 at 2:00 AM (Chicago time)\""},
    {"maintenance.ends_at", "\"Mar 9, 2025 at 4:00 AM (Chicago time)\""},
    {"issues", "[{\"headline\": \"Your eSIM activation failed on our side\","
               " \"signal\": \"SIG-002\", \"name\": \"eSIM provisioning FAILED\","
               " \"severity\": \"CRITICAL\"},"
               " {\"headline\": \"You've had to contact us several times about it\","
               " \"signal\": \"SIG-008\", \"name\": \"Repeat contact\","
               " \"severity\": \"HIGH\"}]"},
    {"merged", "true"},
    {"detected_at", "\"2025-03-06 14:20 UTC\""},
    {"response_within", "\"1 hour\""},
    {"already_reached_out", "false"},
    {"reached_out_at", "\"2025-03-06 10:02 UTC\""},
    {"last_message.at", "\"Mar 5, 2025 at 10:02 AM (Chicago time)\""},
    {"last_message.channel_name", "\"email\""},
    {"contacted_since.at", "\"Mar 6, 2025 at 2:05 PM (Chicago time)\""},
    {"contacted_since.kind", "\"chat\""},
    {"next_update.within", "\"4 hours\""},
    {"tone.level", "1"},
    {"tone.helpful", "true"},
    {"tone.empathetic", "false"},
    {"tone.apologetic", "false"},
    {"tone.urgent", "false"},
    {"signal.id", "\"SIG-002\""},
    {"signal.name", "\"eSIM provisioning FAILED\""},
    {"signal.severity", "\"CRITICAL\""},
    {"signal.team", "\"esim-specialists\""},
    {"signal.root_cause", "\"esim_provisioning\""},
    {"signal.description", "\"The eSIM status is ERROR or FAILED after payment.\""},
    {"priority", "\"urgent\""},
    {"group", "\"eSIM specialists\""},
    {"sla.respond_within", "\"30 minutes\""},
    {"sla.followup_within", "\"2 hours\""},
    {"sentiment_risk", "\"High\""},
    {"draft.subject", "\"We're fixing your eSIM activation\""},
    {"draft.text", "\"Hi Jodi,\\n\\nWe spotted a problem with your eSIM activation and are "
                   "already fixing it.\""},
    {"ticket_link", "\"https://support.example/agent/tickets/48213\""},
    {"escalation.step", "\"escalate_l2_unresolved\""},
    {"incident.id", "17"},
    {"incident.count", "3"},
    {"incident.window", "\"24h\""},
    {"incident.factor_key", "\"portin.carrier\""},
    {"incident.factor_value", "\"Verizon\""},
    {"incident.customers", "[{\"customer\": \"jodi@example.com\", \"order\": \"ORD-20931\","
                           " \"status\": \"FAILED\", \"since\": \"3h\"},"
                           " {\"customer\": \"ana@example.com\", \"order\": \"ORD-20944\","
                           " \"status\": \"ERROR\", \"since\": \"2h\"},"
                           " {\"customer\": \"lee@example.com\", \"order\": \"ORD-20950\","
                           " \"status\": \"FAILED\", \"since\": \"40m\"}]"},
    {"ticket.id", "\"48213\""},
    {"ticket.subject", "\"eSIM will not activate\""},
    {"ticket.resolution", "\"we issued a new eSIM profile and it activated\""},
    {"ticket.severity", "\"HIGH\""},
    {"ticket.opened_at", "\"March 3, 2025\""},
    {"ticket.duration", "\"4 days\""},
    {"followup.level", "\"relationship_repair\""},
    {"followup.reminder_in", "\"5 days\""},
};

json_t *comms_sample_context(void) {
    json_t *ctx = json_object();
    for (const struct comms_var *v = comms_vars; v->name; v++) {
        const char *dot = strrchr(v->name, '.');
        if (dot) {
            char parent[128];
            size_t n = (size_t)(dot - v->name);
            if (n < sizeof parent) {
                memcpy(parent, v->name, n);
                parent[n] = '\0';
                if (comms_var_is_list(parent))
                    continue; /* a field: set through its list */
            }
        }
        json_t *val = NULL;
        for (size_t i = 0; i < ARRAY_SIZE(samples) && !val; i++)
            if (!strcmp(samples[i].name, v->name))
                val = json_loads(samples[i].json, JSON_DECODE_ANY, NULL);
        set_path(ctx, v->name, val ? val : json_null());
    }
    return ctx;
}
