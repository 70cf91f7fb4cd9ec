build/tests/unit/util/test_util.o: tests/unit/util/test_util.c \
 tests/unit/util/../test.h src/util/buf.h src/util/fwtime.h \
 src/util/map.h src/util/util.h
tests/unit/util/../test.h:
src/util/buf.h:
src/util/fwtime.h:
src/util/map.h:
src/util/util.h:
