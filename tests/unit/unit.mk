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
