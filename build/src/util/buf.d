build/src/util/buf.o: src/util/buf.c src/util/buf.h src/util/fwtime.h \
 src/util/util.h
src/util/buf.h:
src/util/fwtime.h:
src/util/util.h:
