# Unit test wiring. Each part appends its test programs to UNIT_TESTS; every
# program is a cmocka suite that prints its own summary. test-unit runs them
# all from the repository root (they read docs/vectors/protocol-vectors.txt)
# and prints one closing line.

VECTORS_OBJ := $(BUILD)/tests/unit/vectors.o
CMOCKA_LIBS := $(shell $(PKG) --libs cmocka)

test-unit: $(UNIT_TESTS)
	@pass=0; fail=0; for t in $(UNIT_TESTS); do \
	    echo "== $$t"; \
	    if $$t; then pass=$$((pass+1)); else fail=$$((fail+1)); echo "FAILED: $$t"; fi; \
	done; \
	echo "unit tests: $$pass suite(s) passed, $$fail failed"; \
	test $$fail -eq 0

# The same unit tests under valgrind's memcheck: any invalid access, use of
# uninitialised memory or leak (of any kind, also memory still reachable at
# exit) fails the run. The fuzz smoke runs are not repeated here.
VALGRIND ?= valgrind
VALGRIND_FLAGS := --quiet --leak-check=full --show-leak-kinds=all --errors-for-leak-kinds=all \
                  --track-origins=yes --error-exitcode=99
.PHONY: test-valgrind
test-valgrind: $(UNIT_TESTS)
	@pass=0; fail=0; for t in $(UNIT_TESTS); do \
	    echo "== valgrind $$t"; \
	    if $(VALGRIND) $(VALGRIND_FLAGS) $$t > $$t.valgrind.log 2>&1; then pass=$$((pass+1)); \
	    else fail=$$((fail+1)); tail -40 $$t.valgrind.log; echo "FAILED under valgrind: $$t (log: $$t.valgrind.log)"; fi; \
	done; \
	echo "valgrind: $$pass suite(s) clean, $$fail failed"; \
	test $$fail -eq 0
