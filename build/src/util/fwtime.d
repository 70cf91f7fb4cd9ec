build/src/util/fwtime.o: src/util/fwtime.c src/util/fwtime.h \
 src/util/util.h
src/util/fwtime.h:
src/util/util.h:
