"""LLM policies on the benchmark's bonus interface (spec llm_adapters.md).

- `explore_bench.llm.text`: text views of bandit and MiniGrid envs, action parsing, the invalid-reply rule;
- `explore_bench.llm.policy`: `HFPolicy` around a transformers causal LM (tiny random model, local folders, SmolLM2);
- `explore_bench.llm.grpo`: `GRPOTrainer` with reward bonuses (any registered bonus on hidden states), advantage
  transforms and token-loss regularisers (`explore_bench.llm.hooks`: RLSP, ProGRPO, Lp-Reg);
- `explore_bench.llm.metrics`: pass@k, diversity, bandit metrics of LLM agents.

The submodules are not imported here, so the text views work without transformers installed.
"""
