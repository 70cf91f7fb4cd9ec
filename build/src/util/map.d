build/src/util/map.o: src/util/map.c src/util/map.h src/util/util.h
src/util/map.h:
src/util/util.h:
