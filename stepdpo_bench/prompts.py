r"""Prompt templates by name.  The rendered prompt is stored with every sample, and its template in the run id.

The Step-DPO repository's formats (``eval_math.py``) are reproduced exactly, so our accuracies are comparable to
the paper's; ``*-step`` variants open the answer with "Let's think step by step.\nStep 1: ", and that opening
(``assistant_prefix``) is put back in front of the completion before it is split into steps.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .tasks import Problem

BOXED_INSTRUCTION = "Please reason step by step, and put your final answer within \\boxed{}."
STEP_OPENING = "Let's think step by step.\nStep 1: "
_BOXED = BOXED_INSTRUCTION.replace("{", "{{").replace("}", "}}")  # as it must appear inside a format template

Prompt = str | list[dict[str, str]]  # raw text, or chat messages for a server that applies its own template


class PromptError(ValueError):
    """Unknown prompt name, unreadable prompt file, or a model that cannot render the prompt."""


@dataclass(frozen=True)
class PromptTemplate:
    name: str
    template: str  # ``{question}`` is replaced; for ``chat`` it is the user message
    assistant_prefix: str = ""  # text the template already put in the assistant's mouth
    stop: tuple[str, ...] = ()
    chat: bool = False  # render with the tokenizer's chat template (or send as messages)
    meta: dict[str, Any] = field(default_factory=dict)

    def fingerprint(self) -> str:
        blob = json.dumps([self.template, self.assistant_prefix, list(self.stop), self.chat], ensure_ascii=False)
        return hashlib.sha256(blob.encode()).hexdigest()[:16]


def _qwen(step: bool) -> str:
    return (
        "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n"
        "<|im_start|>user\n{question}\n" + _BOXED + "<|im_end|>\n"
        "<|im_start|>assistant\n" + (STEP_OPENING if step else "")
    )


_ALPACA = (
    "Below is an instruction that describes a task. Write a response that appropriately completes the request.\n\n"
    "### Instruction:\n{question}\n\n### Response:"
)

GSM8K_8SHOT = [
    (
        "There are 15 trees in the grove. Grove workers will plant trees in the grove today. After they are done, "
        "there will be 21 trees. How many trees did the grove workers plant today?",
        "There are 15 trees originally. Then there were 21 trees after some more were planted. So there must have "
        "been 21 - 15 = 6. The answer is 6.",
    ),
    (
        "If there are 3 cars in the parking lot and 2 more cars arrive, how many cars are in the parking lot?",
        "There are originally 3 cars. 2 more cars arrive. 3 + 2 = 5. The answer is 5.",
    ),
    (
        "Leah had 32 chocolates and her sister had 42. If they ate 35, how many pieces do they have left in total?",
        "Originally, Leah had 32 chocolates. Her sister had 42. So in total they had 32 + 42 = 74. After eating 35, "
        "they had 74 - 35 = 39. The answer is 39.",
    ),
    (
        "Jason had 20 lollipops. He gave Denny some lollipops. Now Jason has 12 lollipops. How many lollipops did "
        "Jason give to Denny?",
        "Jason started with 20 lollipops. Then he had 12 after giving some to Denny. So he gave Denny 20 - 12 = 8. "
        "The answer is 8.",
    ),
    (
        "Shawn has five toys. For Christmas, he got two toys each from his mom and dad. How many toys does he have "
        "now?",
        "Shawn started with 5 toys. If he got 2 toys each from his mom and dad, then that is 4 more toys. "
        "5 + 4 = 9. The answer is 9.",
    ),
    (
        "There were nine computers in the server room. Five more computers were installed each day, from monday to "
        "thursday. How many computers are now in the server room?",
        "There were originally 9 computers. For each of 4 days, 5 more computers were added. So 5 * 4 = 20 "
        "computers were added. 9 + 20 is 29. The answer is 29.",
    ),
    (
        "Michael had 58 golf balls. On tuesday, he lost 23 golf balls. On wednesday, he lost 2 more. How many golf "
        "balls did he have at the end of wednesday?",
        "Michael started with 58 golf balls. After losing 23 on tuesday, he had 58 - 23 = 35. After losing 2 more, "
        "he had 35 - 2 = 33 golf balls. The answer is 33.",
    ),
    (
        "Olivia has $23. She bought five bagels for $3 each. How much money does she have left?",
        "Olivia had 23 dollars. 5 bagels for 3 dollars each will be 5 x 3 = 15 dollars. So she has 23 - 15 dollars "
        "left. 23 - 15 is 8. The answer is 8.",
    ),
]

MINERVA_4SHOT = [
    (
        "Find the domain of the expression  $\\frac{\\sqrt{x-2}}{\\sqrt{5-x}}$.}",
        "The expressions inside each square root must be non-negative. Therefore, $x-2 \\ge 0$, so $x\\ge2$, and "
        "$5 - x \\ge 0$, so $x \\le 5$. Also, the denominator cannot be equal to zero, so $5-x>0$, which gives "
        "$x<5$. Therefore, the domain of the expression is $\\boxed{[2,5)}$.\nFinal Answer: The final answer is "
        "$[2,5)$. I hope it is correct.",
    ),
    (
        "If $\\det \\mathbf{A} = 2$ and $\\det \\mathbf{B} = 12,$ then find $\\det (\\mathbf{A} \\mathbf{B}).$",
        "We have that $\\det (\\mathbf{A} \\mathbf{B}) = (\\det \\mathbf{A})(\\det \\mathbf{B}) = (2)(12) = "
        "\\boxed{24}.$\nFinal Answer: The final answer is $24$. I hope it is correct.",
    ),
    (
        "Terrell usually lifts two 20-pound weights 12 times. If he uses two 15-pound weights instead, how many "
        "times must Terrell lift them in order to lift the same total weight?",
        "If Terrell lifts two 20-pound weights 12 times, he lifts a total of $2\\cdot 12\\cdot20=480$ pounds of "
        "weight.  If he lifts two 15-pound weights instead for $n$ times, he will lift a total of "
        "$2\\cdot15\\cdot n=30n$ pounds of weight.  Equating this to 480 pounds, we can solve for $n$: "
        "\\begin{align*}\n30n&=480\\\\\n\\Rightarrow\\qquad n&=480/30=\\boxed{16}\n\\end{align*}\nFinal Answer: The "
        "final answer is $16$. I hope it is correct.",
    ),
    (
        "If the system of equations\n\n\\begin{align*}\n6x-4y&=a,\\\\\n6y-9x &=b.\n\\end{align*}has a solution "
        "$(x, y)$ where $x$ and $y$ are both nonzero, find $\\frac{a}{b},$ assuming $b$ is nonzero.",
        "If we multiply the first equation by $-\\frac{3}{2}$, we obtain\n\n$$6y-9x=-\\frac{3}{2}a.$$Since we "
        "also know that $6y-9x=b$, we have\n\n$$-\\frac{3}{2}a=b\\Rightarrow\\frac{a}{b}=\\boxed{-\\frac{2}{3}}.$$\n"
        "Final Answer: The final answer is $-\\frac{2}{3}$. I hope it is correct.",
    ),
]


def _fewshot(shots: list[tuple[str, str]], q_label: str, a_label: str) -> str:
    body = "".join(f"{q_label}{q}\n{a_label}{a}\n\n" for q, a in shots)
    return body.replace("{", "{{").replace("}", "}}") + q_label + "{question}\n" + a_label.rstrip()


BUILTIN: dict[str, PromptTemplate] = {
    "qwen2-boxed": PromptTemplate("qwen2-boxed", _qwen(False), stop=("<|im_end|>", "<|endoftext|>")),
    "qwen2-boxed-step": PromptTemplate(
        "qwen2-boxed-step", _qwen(True), STEP_OPENING, stop=("<|im_end|>", "<|endoftext|>")
    ),
    "alpaca": PromptTemplate("alpaca", _ALPACA + " Let's think step by step.", " Let's think step by step."),
    "alpaca-cot-step": PromptTemplate("alpaca-cot-step", _ALPACA + "\n" + STEP_OPENING, STEP_OPENING),
    "deepseek-math": PromptTemplate("deepseek-math", "User: {question}\n" + _BOXED + "\n\nAssistant:"),
    "deepseek-math-step": PromptTemplate(
        "deepseek-math-step",
        "User: {question}\n" + _BOXED + "\n\nAssistant: " + STEP_OPENING,
        STEP_OPENING,
    ),
    "chat": PromptTemplate("chat", "{question}\n" + _BOXED, chat=True),
    "chat-step": PromptTemplate("chat-step", "{question}\n" + _BOXED + " Write each step as 'Step k: ...'.", chat=True),
    "gsm8k-8shot": PromptTemplate(
        "gsm8k-8shot", _fewshot(GSM8K_8SHOT, "Q: ", "A: "), stop=("\n\nQ:", "\nQ:", "Question:")
    ),
    "minerva-4shot": PromptTemplate(
        "minerva-4shot", _fewshot(MINERVA_4SHOT, "Problem:\n", "Solution:\n"), stop=("\n\nProblem:", "Problem:")
    ),
    # the reasoning suite's prompts (exact strings; bench/reasoning.py renders them beside the peers' templates):
    # Qwen2.5-Math's CoT evaluation (the instruction as the system message, its raw ChatML text) ...
    "qwen25-math-cot": PromptTemplate(
        "qwen25-math-cot",
        "<|im_start|>system\n" + _BOXED + "<|im_end|>\n<|im_start|>user\n{question}<|im_end|>\n<|im_start|>assistant\n",
        stop=("<|im_end|>", "<|endoftext|>"),
    ),
    # ... DeepSeek-R1's recommended use (no system prompt; the instruction after the question, in the user turn of
    # the model's own chat template) ...
    "deepseek-r1": PromptTemplate("deepseek-r1", "{question}\n" + _BOXED, chat=True),
    # ... and the plain instruction as text, no template (Qwen2.5-Math's "mathstral" prompt)
    "boxed": PromptTemplate("boxed", "{question}\n" + _BOXED),
    # the embedded default's own format: plain text, "Step k:" lines, "The answer is: N"
    "arith-step": PromptTemplate("arith-step", "Question: {question}\nAnswer:\nStep 1: ", "Step 1: ", stop=("\n\n",)),
}
PROMPT_NAMES = tuple(BUILTIN)


def get_template(name: str | None = None, prompt_file: Path | None = None) -> PromptTemplate:
    """A built-in template by name, or a user's file (text with one ``{question}`` placeholder)."""
    if prompt_file is not None:
        try:
            text = Path(prompt_file).read_text(encoding="utf-8")
        except OSError as exc:
            raise PromptError(f"{prompt_file}: cannot read prompt file ({exc.strerror})") from None
        if "{question}" not in text:
            raise PromptError(f"{prompt_file}: a prompt file must contain the placeholder {{question}}")
        escaped = text.replace("{", "{{").replace("}", "}}").replace("{{question}}", "{question}")
        return PromptTemplate(f"file:{Path(prompt_file).name}", escaped)
    if name not in BUILTIN:
        raise PromptError(f"unknown prompt {name!r}; choose from {', '.join(PROMPT_NAMES)} or pass --prompt-file")
    return BUILTIN[name]


def render(
    template: PromptTemplate,
    problem: Problem,
    tokenizer: Any = None,
    as_messages: bool = False,
    template_kwargs: dict[str, Any] | None = None,
) -> Prompt:
    """The exact prompt for ``problem``.  Chat templates need the model's tokenizer, or go out as messages.

    ``template_kwargs`` reach the chat template as variables (Qwen3's ``enable_thinking``); a server gets them
    in its request instead (the openai backend's ``chat_template_kwargs``)."""
    text = template.template.format(question=problem.question)
    if not template.chat:
        return text
    messages = [{"role": "user", "content": text}]
    if as_messages:
        return messages
    if tokenizer is None or not getattr(tokenizer, "chat_template", None):
        raise PromptError(
            f"prompt {template.name!r} needs the model's chat template, and this model has none; "
            f"use a text prompt: --prompt {'qwen2-boxed-step' if template.name.endswith('-step') else 'qwen2-boxed'} "
            "(or deepseek-math, alpaca, minerva-4shot)"
        )
    return tokenizer.apply_chat_template(
        messages, tokenize=False, add_generation_prompt=True, **(template_kwargs or {})
    )


def response_head(template: PromptTemplate, rendered: str, response_start: str) -> str:
    """The prompt text to put before a response that begins with ``response_start``.

    A ``*-step`` template already opens the answer ("Let's think step by step.\nStep 1: ").  When the response
    restates that opening, or its first line (steps cut from a full solution: "Let's think step by step." is a
    step of its own, so an error at Step 1 has only that line before it; public pairs whose
    ``initial_reason_steps`` start with it), the template's copy is dropped so it is not said twice.  Leading
    whitespace of the template's opening (alpaca's " Let's think ...") is kept.
    """
    p = template.assistant_prefix
    opening = p.split("\n", 1)[0].strip()
    if p and opening and rendered.endswith(p) and response_start.lstrip().startswith(opening):
        return rendered[: -len(p)] + p[: len(p) - len(p.lstrip())]
    return rendered


def question_from_prompt(template: str, rendered: str) -> str | None:
    """The problem text inside a rendered prompt, given the run's template (``{question}`` placeholder): how
    ``regrade`` recovers each problem's question (the grader reads it for rounding requests) from run files."""
    if "{question}" not in template:
        return None
    head, _, tail = template.partition("{question}")
    head, tail = head.replace("{{", "{").replace("}}", "}"), tail.replace("{{", "{").replace("}}", "}")
    start = rendered.find(head) if head else 0
    if start < 0:
        return None
    start += len(head)
    end = rendered.rfind(tail) if tail else len(rendered)
    return rendered[start:end] if end >= start else None


def default_prompt(convention: str) -> str:
    return {"arith": "arith-step"}.get(convention, "qwen2-boxed")
