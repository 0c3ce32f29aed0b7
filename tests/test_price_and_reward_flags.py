"""Issue 16 leftovers: the user's price per GPU-hour on `advisor advise` and in the wizard (the plan's dollars, the
money-budget weighing of RLHF vs DPO, the cost line, the run README), and `--reward-value-model` on `advisor fit` and
`advisor generate` (RLHF with a smaller reward/value model of the policy's family)."""

from __future__ import annotations

import ast
import asyncio
import io
import json
import re

import pytest
from rich.console import Console

from advisor.advice.advise import advise
from advisor.advice.timecost import USER_PRICE, stage_time_words
from advisor.answers import Answers
from advisor.plan_render import print_plan
from advisor.planning import model_spec
from advisor.questions import question
from advisor.scriptgen import write_run
from advisor.tui.state import questions_for
from estimators import Setup, estimate
from estimators.gpus import find_gpu

BASE = dict(goal="quality_safety", data="preference_pairs", gpu="h100", model="7b")
TABLE_PRICE = find_gpu("h100").price_usd_per_hour  # rules/gpus.toml's on-demand price


def plan_for(**answers):
    return advise(Answers.from_mapping(answers))


def config_of(text: str) -> dict:
    return next(ast.literal_eval(n.value) for n in ast.parse(text).body if isinstance(n, ast.Assign) and getattr(n.targets[0], "id", "") == "CONFIG")


def one_line_exit_2(out, needle: str) -> None:
    assert out.returncode == 2 and "Traceback" not in out.stderr, out.stderr
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and needle in lines[0], out.stderr


@pytest.fixture(scope="module")
def table():
    plan = plan_for(**BASE)
    assert plan.pipeline == "rlhf" and plan.time.usd > 0  # ample and priced: the baseline the user's price changes
    return plan


# ------------------------------------------------------------------------------------------------ --price: advise
def test_the_users_price_scales_every_dollar_by_the_ratio_and_leaves_the_hours(table):
    price = round(TABLE_PRICE * 0.37, 2)
    ratio = price / TABLE_PRICE
    mine = plan_for(**BASE, price=price)
    assert mine.pipeline == table.pipeline and [s.setup for s in mine.stages] == [s.setup for s in table.stages]
    t, base = mine.time, table.time
    assert [s.hours for s in t.stages] == [s.hours for s in base.stages] and t.hours == base.hours
    for a, b in zip(t.stages, base.stages, strict=True):  # dollars are kept to the cent: ratio x table, within a cent
        assert a.usd == pytest.approx(b.usd * ratio, abs=0.01)
    assert t.usd == pytest.approx(base.usd * ratio, abs=0.01 * len(t.stages))
    assert t.price_usd_per_gpu_hour == price and t.price_source == USER_PRICE
    assert base.price_usd_per_gpu_hour == TABLE_PRICE and base.price_source.startswith(find_gpu("h100").price_source[:20])
    assert f"~${t.usd:,.0f} on 1x NVIDIA H100 80GB" in t.line


@pytest.mark.parametrize(
    "price_factor, budget_factor, table_method, user_method",
    [
        (0.5, 0.75, "dpo", "rlhf"),  # a budget under RLHF's table cost: the user's cheaper price fits it in
        (2.0, 1.25, "rlhf", "dpo"),  # a budget over RLHF's table cost: the user's dearer price puts it over
    ],
)
def test_the_users_price_flips_the_money_budget_decision(table, price_factor, budget_factor, table_method, user_method):
    budget = round(table.time.usd * budget_factor)
    at_table = plan_for(**BASE, budget_usd=budget)
    mine = plan_for(**BASE, budget_usd=budget, price=round(TABLE_PRICE * price_factor, 2))
    assert at_table.pipeline == table_method and mine.pipeline == user_method
    rlhf, over = (mine, at_table) if user_method == "rlhf" else (at_table, mine)
    assert rlhf.time.usd <= budget
    # the DPO plan says why: RLHF's predicted dollars at that plan's price, over the budget
    limited = next(r for r in over.reasons if r.rule == "sel.limited_simple")
    assert f"${budget:,.0f}" in limited.en
    quoted = float(re.search(r"RLHF: 3 stages, ~[\d.]+ h, ~\$([\d,]+)", limited.en).group(1).replace(",", ""))
    factor = 1.0 if over is at_table else price_factor
    assert quoted == pytest.approx(table.time.usd * factor, abs=1.0) and quoted > budget


def test_the_plan_says_the_price_is_the_users_in_both_languages(table):
    mine = plan_for(**BASE, price=1.25)
    for lang, words in (("en", "$1.25/GPU-hour (your price)"), ("ko", "$1.25/GPU-hour (입력한 가격)")):
        buf = io.StringIO()
        print_plan(mine, Answers.from_mapping(dict(BASE, price=1.25)), lang, console=Console(file=buf, width=200))
        assert words in buf.getvalue()
    buf = io.StringIO()
    print_plan(table, Answers.from_mapping(BASE), console=Console(file=buf, width=200))
    assert f"${TABLE_PRICE:g}/GPU-hour (" in buf.getvalue() and "your price" not in buf.getvalue()


def test_a_price_the_plan_cannot_use_is_said_to_be_unused():
    untimed = plan_for(**dict(BASE, gpu="80GB"), price=1.25)  # a bare size: no speed figures, so no time or cost
    assert untimed.time is None
    assert any("$1.25 per GPU-hour is not used" in w.en and "쓰이지 않습니다" in w.ko for w in untimed.warnings)
    timed = plan_for(**BASE, price=1.25)
    assert not any("is not used" in w.en for w in timed.warnings)


def test_the_wizards_stage_words_and_the_run_readme_use_the_plans_price(tmp_path):
    answers = dict(goal="chat_format", data="instruction_pairs", gpu="h100", model="7b", data_count=2000)
    table, mine = plan_for(**answers), plan_for(**answers, price=TABLE_PRICE * 3)
    spec = model_spec("7b")[0]
    usd = [float(stage_time_words(p, spec, "sft").split("~$")[1].split()[0].rstrip(",")) for p in (table, mine)]
    assert usd[1] == pytest.approx(usd[0] * 3, abs=0.02)
    write_run(mine, tmp_path / "run")
    readme = (tmp_path / "run" / "README.md").read_text()
    assert f"Price: ${TABLE_PRICE * 3:g} per GPU-hour (given)." in readme
    assert f"${mine.time.stages[0].usd:,.2f} |" in readme


def test_price_flag_json_and_refusals(advisor_main):
    args = ("advise", "--goal", "quality_safety", "--data", "preference_pairs", "--gpu", "h100", "--model", "7b")
    out = advisor_main(*args, "--price", "0.8", "--json")
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    assert data["answers"]["price"] == 0.8 and data["time"]["price_usd_per_gpu_hour"] == 0.8 and data["time"]["price_source"] == "user"
    assert "--price USD_PER_GPU_HOUR" in advisor_main("advise", "--help").stdout
    one_line_exit_2(advisor_main(*args, "--price", "-1"), "--price: must be at least 0, got -1")
    one_line_exit_2(advisor_main(*args, "--price", "cheap"), "--price: expected a number, got 'cheap'")
    # estimate refuses a negative price in the same words
    one_line_exit_2(advisor_main("estimate", "--model", "7b", "--gpu", "h100", "--price", "-1"), "--price: must be at least 0, got -1")


# ------------------------------------------------------------------------------------------------ --price: wizard
def test_the_wizard_asks_the_price_on_the_resources_step_blank_is_the_table():
    ids = [q.id for q in questions_for("resources")]
    assert ids.index("price") == ids.index("budget_usd") + 1
    q = question("price")
    assert q.kind == "float" and q.optional and q.flag == "--price"
    assert "rules/gpus.toml" in q.help_en and "rules/gpus.toml" in q.help_ko
    assert Answers.from_mapping(dict(BASE, price="  ")).price is None


def test_a_price_typed_in_the_wizard_prices_the_plan():
    from textual.widgets import Input

    from advisor.tui.app import WizardApp

    async def scenario():
        app = WizardApp(answers=BASE, lang="en")
        async with app.run_test(size=(80, 24)) as pilot:
            while app.step != "resources":
                await pilot.press("ctrl+n")
                await pilot.pause()
            box = app.screen.query_one("#q-price", Input)
            box.focus()
            await pilot.press(*"0.9")
            await pilot.press("ctrl+n")
            deadline = asyncio.get_running_loop().time() + 30
            while not (app.step == "recommend" and app.state.plan_is_current()):
                assert asyncio.get_running_loop().time() < deadline, "no plan"
                await pilot.pause(0.05)
        return app

    app = asyncio.run(scenario())
    assert app.state.answers().price == 0.9
    t = app.state.plan.time
    assert t.price_usd_per_gpu_hour == 0.9 and t.price_source == USER_PRICE
    assert t.usd == pytest.approx(plan_for(**BASE).time.usd * 0.9 / TABLE_PRICE, abs=0.01 * len(t.stages))


# ------------------------------------------------------------------------------------------------ fit --reward-value-model
FIT = ("fit", "--model", "8b", "--gpu", "h100", "--train", "ppo", "--method", "lora", "--seq-len", "1024", "--response-len", "256", "--json")


def test_fit_prices_ppo_with_the_smaller_reward_value_model(advisor_main):
    same = json.loads(advisor_main(*FIT).stdout)
    out = advisor_main(*FIT, "--reward-value-model", "llama-3.2-1b")
    assert out.returncode == 0, out.stderr
    small = json.loads(out.stdout)
    assert not same["fits"] and same["max_micro_batch"] == 0 and same["reward_value_model"]["separate"] is False
    assert small["fits"] and small["max_micro_batch"] > 1 and small["fixes"] == []
    policy, rm = model_spec("8b")[0], model_spec("llama-3.2-1b")[0]
    setup = Setup(train="ppo", adaptation="lora", seq_len=1024, response_len=256)
    assert small["estimate"]["peak"]["allocated"]["bytes"] == estimate(policy, setup, rm).peak_allocated
    assert small["reward_value_model"] | {"resolved_from": ""} == {
        "name": "Llama 3.2 1B",
        "key": "llama-3.2-1b",
        "hf_id": "meta-llama/Llama-3.2-1B",
        "resolved_from": "",
        "params_total": small["reward_value_model"]["params_total"],
        "vocab_size": 128_256,
        "separate": True,
    }
    text = advisor_main(*FIT[:-1], "--reward-value-model", "llama-3.2-1b").stdout
    assert "reward and value models priced at Llama 3.2 1B" in text


def test_fit_fastest_times_the_fixes_with_the_smaller_model(advisor_main):
    base = (
        "fit",
        "--model",
        "8b",
        "--gpu",
        "h100",
        "--train",
        "ppo",
        "--method",
        "lora",
        "--seq-len",
        "1024",
        "--response-len",
        "256",
        "--micro-batch",
        "8",
        "--goal",
        "fastest",
        "--json",
    )
    same = json.loads(advisor_main(*base).stdout)["fixes"]
    small = json.loads(advisor_main(*base, "--reward-value-model", "llama-3.2-1b").stdout)["fixes"]
    assert small and same
    assert small[0]["peak_allocated"]["bytes"] < same[0]["peak_allocated"]["bytes"]
    # the value model trains and scores at 1B: more policy tokens per second than with an 8B one
    tps = [f["time"]["before_tokens_per_s_per_gpu"] for f in (same[0], small[0]) if f["time"]]
    assert len(tps) == 2 and tps[1] > tps[0]


def test_fit_of_a_reward_stage_sizes_the_smaller_model(advisor_main):
    out = json.loads(
        advisor_main("fit", "--model", "70b", "--gpu", "h100", "--train", "reward", "--method", "lora", "--reward-value-model", "8b", "--json").stdout
    )
    assert out["estimate"]["model"]["name"] == "Llama 3.1 8B" and out["reward_value_model"]["separate"] is True


@pytest.mark.parametrize(
    "args, needle",
    [
        (["--reward-value-model", "qwen2.5-7b"], "PPO scores the policy's token ids"),
        (["--reward-value-model", "no-such-model"], "--reward-value-model: unknown model 'no-such-model'"),
        (["--train", "dpo", "--reward-value-model", "1b"], "applies to --train reward or ppo, not dpo"),
    ],
)
def test_fit_refuses_a_bad_reward_value_model(advisor_main, args, needle):
    kind = [] if "--train" in args else ["--train", "ppo"]
    one_line_exit_2(advisor_main("fit", "--model", "8b", "--gpu", "h100", *kind, *args), needle)


# ------------------------------------------------------------------------------------------------ generate --reward-value-model
def test_generate_rlhf_trains_and_scores_with_the_smaller_model(advisor_main, tmp_path):
    out = advisor_main(
        "generate",
        "--model",
        "70b",
        "--method-kind",
        "rlhf",
        "--method",
        "lora",
        "--gpu",
        "h100",
        "--reward-value-model",
        "8b",
        "--out",
        str(tmp_path / "run"),
    )
    assert out.returncode == 0, out.stderr
    run = tmp_path / "run"
    reward = config_of((run / "train_reward.py").read_text())
    assert reward["model"] == "meta-llama/Llama-3.1-8B" and reward["base_from"] == ""  # from its own weights, not the 70B SFT
    ppo = config_of((run / "train_ppo.py").read_text())
    assert ppo["model"] == "meta-llama/Llama-3.1-70B" and ppo["reward_model"] == "outputs/reward"  # the trained 8B scores
    sft = config_of((run / "train_sft.py").read_text())
    assert sft["model"] == "meta-llama/Llama-3.1-70B"
    readme = (run / "README.md").read_text()
    assert "**The reward model is smaller than the policy**: stage reward trains `meta-llama/Llama-3.1-8B`" in readme
    # the README's PPO row is timed with 8B reward and value models: more tokens/s than the same-size run's
    same = advisor_main("generate", "--model", "70b", "--method-kind", "rlhf", "--method", "lora", "--gpu", "h100", "--out", str(tmp_path / "same"))
    assert same.returncode == 0, same.stderr

    def ppo_tps(folder) -> float:
        row = next(line for line in (folder / "README.md").read_text().splitlines() if line.startswith("| ppo | "))
        return float(row.split("|")[3].replace(",", ""))

    assert ppo_tps(run) > ppo_tps(tmp_path / "same")


def test_generate_reward_kind_trains_the_smaller_model(advisor_main, tmp_path):
    out = advisor_main(
        "generate",
        "--model",
        "70b",
        "--method-kind",
        "reward",
        "--method",
        "lora",
        "--gpu",
        "h100",
        "--reward-value-model",
        "8b",
        "--out",
        str(tmp_path / "run"),
    )
    assert out.returncode == 0, out.stderr
    assert config_of((tmp_path / "run" / "train_reward.py").read_text())["model"] == "meta-llama/Llama-3.1-8B"
    default = advisor_main("generate", "--model", "70b", "--method-kind", "reward", "--method", "lora", "--gpu", "h100", "--out", str(tmp_path / "d"))
    assert default.returncode == 0 and config_of((tmp_path / "d" / "train_reward.py").read_text())["model"] == "meta-llama/Llama-3.1-70B"


@pytest.mark.parametrize("kind", ["sft", "dpo", "grpo", "sft+dpo"])
def test_generate_refuses_it_on_a_kind_without_a_reward_model(advisor_main, tmp_path, kind):
    out = advisor_main("generate", "--model", "70b", "--method-kind", kind, "--reward-value-model", "8b", "--out", str(tmp_path / "run"))
    one_line_exit_2(out, f"--reward-value-model: the {kind} run has no reward or value model; it applies to --method-kind reward or rlhf")
    assert not (tmp_path / "run").exists()


def test_generate_refuses_another_vocabulary_and_a_plan_file(advisor_main, tmp_path):
    one_line_exit_2(
        advisor_main("generate", "--model", "70b", "--method-kind", "rlhf", "--reward-value-model", "qwen2.5-7b", "--out", str(tmp_path / "run")),
        "PPO scores the policy's token ids",
    )
    plan = tmp_path / "plan.toml"
    assert advisor_main("advise", *sum(([f"--{k.replace('_', '-')}", v] for k, v in BASE.items()), []), "--save", str(plan)).returncode == 0
    one_line_exit_2(
        advisor_main("generate", "--plan", str(plan), "--reward-value-model", "1b", "--out", str(tmp_path / "r")),
        "--plan fixes the model and set-up; drop --reward-value-model",
    )
