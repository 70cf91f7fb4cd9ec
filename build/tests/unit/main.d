build/tests/unit/main.o: tests/unit/main.c tests/unit/test.h \
 tests/unit/test_list.h
tests/unit/test.h:
tests/unit/test_list.h:
