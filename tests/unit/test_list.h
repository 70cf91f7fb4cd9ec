/*
 * test_list.h -- every module's test table.  Add a line when a module gains
 * tests; the runner runs them in this order.
 */
TEST_MODULE(util_tests)
TEST_MODULE(tz_tests)
TEST_MODULE(json_tests)
TEST_MODULE(expr_tests)
TEST_MODULE(tw_tests)
TEST_MODULE(event_tests)
TEST_MODULE(rules_tests)
TEST_MODULE(engine_tests)
TEST_MODULE(engage_tests)
TEST_MODULE(calendar_tests)
TEST_MODULE(sla_config_tests)
TEST_MODULE(cases_tests)
TEST_MODULE(playbook_tests)
TEST_MODULE(store_tests)
TEST_MODULE(delivery_tests)
TEST_MODULE(comms_tests)
TEST_MODULE(auth_tests)
TEST_MODULE(stats_tests)
TEST_MODULE(sentiment_tests)
TEST_MODULE(model_tests)
