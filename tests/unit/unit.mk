# Unit test wiring. Each part appends its test programs to UNIT_TESTS; every
# program is a cmocka suite that prints its own summary. test-unit runs them
# all from the repository root (they read docs/vectors/protocol-vectors.txt)
# and prints one closing line, which also counts the checks of test-unit
# that this machine could not run (their reasons, left in $(SKIP_DIR) by
# the checks themselves, are printed above it).

VECTORS_OBJ := $(BUILD)/tests/unit/vectors.o
CMOCKA_LIBS = $(shell $(PKG) --libs cmocka)

test-unit: $(UNIT_TESTS)
	@pass=0; fail=0; for t in $(UNIT_TESTS); do \
	    echo "== $$t"; \
	    if $(SAN_RUN) $$t; then pass=$$((pass+1)); else fail=$$((fail+1)); echo "FAILED: $$t"; fi; \
	done; \
	skipped=0; for f in $(SKIP_DIR)/*; do [ -f "$$f" ] || continue; \
	    skipped=$$((skipped+1)); echo "SKIPPED $$(basename $$f): $$(cat $$f)"; done; \
	echo "unit tests: $$pass suite(s) passed, $$fail failed, $$skipped check(s) skipped"; \
	test $$fail -eq 0

# The same unit tests under valgrind's memcheck: any invalid access, use of
# uninitialised memory or leak (of any kind, also memory still reachable at
# exit) fails the run, except what the dynamic loader keeps of a PKCS#11
# module loaded with dlopen (tests/unit/valgrind.supp says which). The fuzz
# smoke runs are not repeated here.
VALGRIND ?= valgrind
VALGRIND_FLAGS := --quiet --leak-check=full --show-leak-kinds=all --errors-for-leak-kinds=all \
                  --track-origins=yes --error-exitcode=99 \
                  --suppressions=tests/unit/valgrind.supp
.PHONY: test-valgrind valgrind-unit
test-valgrind: deps
	@$(MAKE) --no-print-directory valgrind-unit
valgrind-unit: $(UNIT_TESTS)
	@pass=0; fail=0; for t in $(UNIT_TESTS); do \
	    echo "== valgrind $$t"; \
	    if $(VALGRIND) $(VALGRIND_FLAGS) $$t > $$t.valgrind.log 2>&1; then pass=$$((pass+1)); \
	    else fail=$$((fail+1)); tail -40 $$t.valgrind.log; echo "FAILED under valgrind: $$t (log: $$t.valgrind.log)"; fi; \
	done; \
	echo "valgrind: $$pass suite(s) clean, $$fail failed"; \
	test $$fail -eq 0
