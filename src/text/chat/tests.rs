use std::time::{Duration, Instant};

use super::budget::NODE;
use super::*;

#[test]
fn mistral_fallback_format() {
    let t = ChatTemplate::new(None, "<s>", "</s>");
    let m = [Message::new("system", "Be brief."), Message::new("user", "Hi"), Message::new("assistant", "Hello"), Message::new("user", "Bye")];
    assert_eq!(t.render(&m, true).unwrap(), "<s>[INST] Be brief.\n\nHi [/INST]Hello</s>[INST] Bye [/INST]");
}

#[test]
fn jinja_template_with_python_methods() {
    let src = "{% for m in messages %}<|{{ m.role }}|>{{ m.content.strip() }}\n{% endfor %}{% if add_generation_prompt %}<|assistant|>{% endif %}";
    let t = ChatTemplate::new(Some(src.into()), "", "");
    assert_eq!(t.render(&[Message::new("user", "  hi  ")], true).unwrap(), "<|user|>hi\n<|assistant|>");
}

/// The reasoning toggle is off, as SmolLM3's template reads it (its default is on).
#[test]
fn reasoning_is_off_for_templates_that_read_enable_thinking() {
    let src = "{%- if enable_thinking is not defined -%}{%- set enable_thinking = true -%}{%- endif -%}{{ '/think' if enable_thinking else '/no_think' }}|{% for m in messages %}{{ m.content }}{% endfor %}";
    let t = ChatTemplate::new(Some(src.into()), "", "");
    assert_eq!(t.render(&[Message { role: "user".into(), content: "hi".into() }], true).unwrap(), "/no_think|hi");
}

#[test]
fn raise_exception_is_an_error_not_a_panic() {
    let t = ChatTemplate::new(Some("{{ raise_exception('roles must alternate') }}".into()), "", "");
    let e = t.render(&[], true).unwrap_err().to_string();
    assert!(e.contains("roles must alternate"), "{e}");
}

#[test]
fn a_template_that_loops_for_ever_runs_out_of_fuel() {
    let t = ChatTemplate::new(Some("{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}".into()), "", "");
    let e = t.render(&[Message::new("user", "hi")], true).unwrap_err();
    assert!(matches!(e, ChatError::TooLong { messages: 1, .. }), "{e}");
    assert!(e.to_string().contains("ran too long"), "{e}");
}

#[test]
fn a_template_that_amplifies_its_output_is_cut_off() {
    let t = ChatTemplate::new(Some("{% for i in range(20) %}{{ messages[0].content * 10000 }}{% endfor %}".into()), "", "");
    let e = t.render(&[Message::new("user", "0123456789")], true).unwrap_err();
    assert!(matches!(e, ChatError::TooLarge { .. }), "{e}");
    assert!(e.to_string().contains("produced over"), "{e}");
}

#[test]
fn a_template_that_writes_nothing_says_so() {
    let t = ChatTemplate::new(Some("{# nothing #}".into()), "", "");
    let e = t.render(&[Message::new("user", "hi")], true).unwrap_err();
    assert!(matches!(e, ChatError::Empty { .. }), "{e}");
}

// ---- Real templates render as they did before the guards ----

/// The chat templates of the models the project uses and of other current families,
/// as their tokenizer_config.json (or the GGUF, for SmolLM2) carries them; see
/// tests/fixtures/chat-templates/README.md. (name, template, bos, eos)
const TEMPLATES: &[(&str, &str, &str, &str)] = &[
    ("smollm2", include_str!("../../../tests/fixtures/chat-templates/smollm2.jinja"), "<|im_start|>", "<|im_end|>"),
    ("qwen2.5", include_str!("../../../tests/fixtures/chat-templates/qwen2.5.jinja"), "", "<|im_end|>"),
    ("llama-3.2", include_str!("../../../tests/fixtures/chat-templates/llama-3.2.jinja"), "<|begin_of_text|>", "<|eot_id|>"),
    ("mistral-v0.3", include_str!("../../../tests/fixtures/chat-templates/mistral-v0.3.jinja"), "<s>", "</s>"),
    ("mistral-v0.2", include_str!("../../../tests/fixtures/chat-templates/mistral-v0.2.jinja"), "<s>", "</s>"),
    ("gemma-3", include_str!("../../../tests/fixtures/chat-templates/gemma-3.jinja"), "<bos>", "<eos>"),
    ("qwen3", include_str!("../../../tests/fixtures/chat-templates/qwen3.jinja"), "", "<|im_end|>"),
    ("qwen3-coder-30b", include_str!("../../../tests/fixtures/chat-templates/qwen3-coder-30b.jinja"), "", "<|im_end|>"),
    ("qwen3-coder-next", include_str!("../../../tests/fixtures/chat-templates/qwen3-coder-next.jinja"), "", "<|im_end|>"),
    ("deepseek-r1-qwen3", include_str!("../../../tests/fixtures/chat-templates/deepseek-r1-qwen3.jinja"), "<｜begin▁of▁sentence｜>", "<｜end▁of▁sentence｜>"),
    ("devstral-small-2", include_str!("../../../tests/fixtures/chat-templates/devstral-small-2.jinja"), "<s>", "</s>"),
    ("glm-4.6v", include_str!("../../../tests/fixtures/chat-templates/glm-4.6v.jinja"), "", "<|endoftext|>"),
    ("kimi-k2.5", include_str!("../../../tests/fixtures/chat-templates/kimi-k2.5.jinja"), "[BOS]", "[EOS]"),
    ("lfm2", include_str!("../../../tests/fixtures/chat-templates/lfm2.jinja"), "<|startoftext|>", "<|im_end|>"),
    ("gpt-oss", include_str!("../../../tests/fixtures/chat-templates/gpt-oss.jinja"), "<|startoftext|>", "<|return|>"),
];

/// The templates that must render the project's prompts (a system and a user turn,
/// or a user turn alone) at all.
const MUST_RENDER: &[&str] = &["smollm2", "qwen2.5", "llama-3.2", "mistral-v0.3", "gemma-3", "qwen3"];

/// Renders as `ChatTemplate::render` did before its values were bounded: the same
/// environment, the template compiled as it is, no guards.
fn render_unguarded(src: &str, messages: &[Message], add_generation_prompt: bool, bos: &str, eos: &str) -> Result<String, String> {
    let mut env = minijinja::Environment::new();
    minijinja_contrib::add_to_environment(&mut env);
    env.set_unknown_method_callback(minijinja_contrib::pycompat::unknown_method_callback);
    env.add_function("raise_exception", |msg: String| -> Result<String, minijinja::Error> {
        Err(minijinja::Error::new(minijinja::ErrorKind::InvalidOperation, msg))
    });
    env.add_function("strftime_now", |_fmt: String| "26 Jul 2024".to_string());
    env.set_fuel(Some(FUEL));
    env.set_recursion_limit(64);
    env.add_template("chat", src).map_err(|e| e.to_string())?;
    let t = env.get_template("chat").map_err(|e| e.to_string())?;
    let ctx = minijinja::context! { messages => messages, add_generation_prompt => add_generation_prompt, enable_thinking => false, bos_token => bos, eos_token => eos };
    t.render(ctx).map_err(|e| e.to_string())
}

/// Conversations the project sends (a system and a user turn) and longer ones, with
/// text that tests quoting: quotes, backslashes, braces, newlines, non-ASCII,
/// a reasoning block (Qwen3 splits on `</think>`).
fn conversations() -> Vec<Vec<Message>> {
    let odd = "Quote ' and \" and \\ and {{ x }} and {% y %}\nnew line\ttab — é 日本 🙂";
    vec![
        vec![Message::new("user", "Summarize this transcript.")],
        vec![Message::new("system", "You are a concise summarizer."), Message::new("user", odd)],
        vec![Message::new("user", "Hi"), Message::new("assistant", "Hello!"), Message::new("user", odd)],
        vec![
            Message::new("system", "  Be brief.  "),
            Message::new("user", "First"),
            Message::new("assistant", "<think>\nreasoning\n</think>\n\nAnswer"),
            Message::new("user", "Second"),
        ],
        vec![Message::new("user", "a"), Message::new("user", "b")],
        vec![Message::new("assistant", "starts with the assistant")],
    ]
}

#[test]
fn real_templates_render_byte_for_byte_as_before() {
    let mut rendered = 0;
    for &(name, src, bos, eos) in TEMPLATES {
        let t = ChatTemplate::new(Some(src.into()), bos, eos).named(name);
        for (i, m) in conversations().iter().enumerate() {
            for gen in [true, false] {
                let before = render_unguarded(src, m, gen, bos, eos);
                let after = t.render(m, gen);
                match (&before, &after) {
                    (Ok(b), Ok(a)) => {
                        assert_eq!(a, b, "{name}, conversation {i}, generation prompt {gen}");
                        rendered += 1;
                    }
                    // A template's own refusal (e.g. roles that do not alternate) reads the same.
                    (Err(b), Err(ChatError::Render { message, .. })) => assert_eq!(message, b, "{name}, conversation {i}"),
                    (Err(_), Err(ChatError::Empty { .. })) => {}
                    // The one refusal a guard may add: an empty render was not one before.
                    (Ok(b), Err(ChatError::Empty { .. })) if b.is_empty() => {}
                    _ => panic!("{name}, conversation {i}, generation prompt {gen}: before {before:?}, after {after:?}"),
                }
            }
        }
        if MUST_RENDER.contains(&name) {
            for m in &conversations()[..2] {
                assert!(t.render(m, true).is_ok(), "{name} must render {m:?}");
            }
        }
    }
    assert!(rendered > TEMPLATES.len() * 4, "only {rendered} renders compared");
}

/// The largest transcript the CLI takes, as one user turn, stays well inside the
/// budgets on every template (their work included: no false stop near the limits).
#[test]
fn real_templates_render_the_largest_transcript_as_before() {
    let line = "Speaker 1: so the quarterly numbers — revenue, churn, \"growth\" — look fine.\n";
    // 5 MiB: `transcript::MAX_TRANSCRIPT_BYTES`, written out here because `text` is a
    // layer below `transcript` (tests/layers.rs).
    let transcript = line.repeat(5 * 1024 * 1024 / line.len());
    let m = [Message::new("system", "Summarize the transcript."), Message::new("user", &transcript)];
    for &(name, src, bos, eos) in TEMPLATES {
        let before = render_unguarded(src, &m, true, bos, eos);
        let after = ChatTemplate::new(Some(src.into()), bos, eos).named(name).render(&m, true);
        match (&before, &after) {
            (Ok(b), Ok(a)) => assert!(a == b, "{name}: renders differ"),
            (Err(_), Err(ChatError::Render { .. })) => {}
            _ => panic!("{name}: before {:?}, after {:?}", before.map(|s| s.len()), after.map(|s| s.len())),
        }
        if MUST_RENDER.contains(&name) {
            assert!(after.is_ok(), "{name}");
        }
    }
}

/// The fixture is the default model's own template, where the model is present.
#[test]
fn smollm2_fixture_is_the_model_files_template() {
    let path = format!("{}/models/SmolLM2-135M-Instruct.Q4_1.gguf", env!("CARGO_MANIFEST_DIR"));
    let Ok(f) = std::fs::File::open(&path) else {
        eprintln!("skipped: {path} not fetched");
        return;
    };
    use std::io::Read;
    let size = f.metadata().unwrap().len();
    let mut head = Vec::new();
    f.take(16 << 20).read_to_end(&mut head).unwrap();
    let g = crate::format::gguf::Gguf::parse(&head, size).unwrap();
    let src = g.get("tokenizer.chat_template").and_then(|v| v.as_str()).unwrap();
    assert_eq!(src, TEMPLATES[0].1);
}

/// Every statement and expression form prints back to a template that renders the
/// same (the real templates above use only some).
#[test]
fn every_construct_renders_as_before() {
    let cases = [
        "{% for m in messages if m.role != 'x' %}{{ loop.index }}:{{ m.content|upper }}{% else %}none{% endfor %}",
        "{% for a, b in [[1, 2], [3, 4]] %}{{ a }}{{ b }}{% endfor %}{% set (x, y) = 5, 6 %}{{ x + y }}",
        "{% set (x,) = [7] %}{{ x }}{% with a = 1, b = messages|length %}{{ a + b }}{% endwith %}",
        "{{ 'a' ~ 1 ~ none ~ (x if false) ~ [1, 'b'] ~ {'k': 'v'} }}|{{ 2 * 3 }}{{ 2 ** 10 }}{{ 7 // 2 }}{{ 7 % 3 }}{{ -3 }}{{ 1.5 * 2 }}",
        "{{ 'ab' * 3 }}{{ 3 * 'ab' }}{{ [1, 2] * 2 }}{{ [1] + [2] }}{{ 'x' + 'y' }}{{ 10 - 2 / 4 }}",
        "{{ 1 < 2 < 3 }}{{ 1 in [1] }}{{ 2 not in [1] }}{{ not true }}{{ true and false or 'z' }}{{ none is none }}{{ 3 is divisibleby 3 }}",
        "{{ messages[0]['content'][1:3] }}{{ messages[0].content[::-1] }}{{ messages[-1].role }}{{ [1,2,3].0 if false else [4,5][0] }}",
        "{% set ns = namespace(a=1, l=[]) %}{% for i in range(3) %}{% set ns.a = ns.a * 2 %}{% set ns.l = ns.l + [i] %}{% endfor %}{{ ns.a }}{{ ns.l }}",
        "{% macro m(x, y='d') %}<{{ x }}{{ y }}{{ caller() if caller is defined else '' }}>{% endmacro %}{{ m(1) }}{{ m(2, y=3) }}{% call m('c') %}inside{% endcall %}",
        "{% macro m(x) %}[{{ x }}{{ caller(5) }}]{% endmacro %}{% call(a) m(1) %}{{ a }}{% endcall %}",
        "{% set s %}captured {{ messages|length }}{% endset %}{{ s|trim }}{% set t | upper %}lower{% endset %}{{ t }}",
        "{% filter upper|replace('A', 'b') %}abc{% endfilter %}{% autoescape true %}<{{ '<&>' }}{{ '<ok>'|safe }}{% endautoescape %}",
        "{% for x in [[1, [2]], 3] recursive %}{% if x is iterable %}{{ loop(x) }}{% else %}{{ x }}{% endif %}{% endfor %}",
        "{% for i in range(10) %}{% if i == 2 %}{% continue %}{% endif %}{% if i == 5 %}{% break %}{% endif %}{{ i }}{% endfor %}",
        "{{ '%s-%05d'|format('a', 42) }}{{ '{}/{:>4}'.format('b', 7) }}{{ ['x','y']|join(', ') }}{{ ', '.join(['p', 'q']) }}{{ 'a b'|replace(' ', '_') }}",
        "{{ 'a,b'.split(',') }}{{ 'x y'|split }}{{ 'l1\nl2'|lines }}{{ 'abc'|list }}{{ [3,1,2]|sort }}{{ [1,1,2]|unique|list }}{{ 'ab'|reverse }}",
        "{{ messages|map(attribute='role')|join('/') }}{{ messages|selectattr('role', 'equalto', 'user')|list|length }}{{ ['a','b']|map('upper')|list }}",
        "{{ [1,2,3,4,5]|batch(2, 0)|list }}{{ [1,2,3]|slice(2)|list }}{{ {'b': 1, 'a': 2}|dictsort }}{{ {'a': 1}|items|list }}{{ [1,2]|last }}",
        "{{ 'x\ny'|indent(2, true) }}{{ [1, 'a']|string }}{{ [1]|pprint }}{{ '<a>'|e }}{{ '<a>'|escape|safe }}{{ 'Hello world'|truncate(length=8, leeway=0) }}",
        "{{ {'a': 1}.get('a') }}{{ {'a': 1}.items()|list }}{{ 'a-b'.replace('-', '+', 1) }}{{ 'x\ny'.splitlines() }}{{ 'Ab'.lower() }}",
        "{% raw %}{{ not a tag }}{% endraw %}  {#- comment -#}  {{- ' trimmed ' -}}  \n{{ \"dq\" 'adjacent' }}{{ true }}{{ True }}{{ None }}",
        "{% do range(3) %}{% set d = dict(a=1, **{'b': 2}) %}{{ d.a }}{{ d.b }}{{ range(3)|list }}{% set c = cycler([1, 2]) %}{{ c.next() }}{{ c.next() }}{% set j = joiner('|') %}{{ j() }}a{{ j() }}b",
        // A template's names cannot shadow the guards (they are filters).
        "{% set __add = 1 %}{% macro __cat(a) %}m{% endmacro %}{% set __store = 2 %}{{ 'a' ~ 'b' }}{{ 1 + 2 }}{{ __add }}{{ __cat(1) }}",
        "{{ x is undefined }}{{ messages[0].nope is defined }}{{ messages[0] is mapping }}{{ (messages|first).content }}{{ messages|length > 0 }}\n\n",
    ];
    let m = [Message::new("user", "hello"), Message::new("assistant", "hi")];
    for (i, src) in cases.iter().enumerate() {
        let before = render_unguarded(src, &m, true, "<s>", "</s>");
        let after = ChatTemplate::new(Some(src.to_string()), "<s>", "</s>").render(&m, true);
        match (&before, &after) {
            (Ok(b), Ok(a)) => assert_eq!(a, b, "case {i}: {src}"),
            (Err(_), Err(_)) => {}
            _ => panic!("case {i}: {src}: before {before:?}, after {after:?}"),
        }
        assert!(before.is_ok(), "case {i} should render before: {before:?}");
    }
}

/// minijinja's parser refuses expressions nested past 150 levels; a long chain of
/// one operator or of filters parses flat, and must print back flat.
#[test]
fn long_chains_print_as_shallow_as_they_parse() {
    let chain = |term: &dyn Fn(usize) -> String, op: &str| (0..120).map(term).collect::<Vec<_>>().join(op);
    let src = format!(
        "{{{{ {} }}}}|{{{{ {} }}}}|{{{{ {} }}}}|{{{{ {} }}}}|{{{{ {} }}}}|{{{{ 'x'{} }}}}",
        chain(&|i| format!("'{i}'"), " ~ "),
        chain(&|i| i.to_string(), " + "),
        chain(&|i| i.to_string(), " - "),
        chain(&|_| "messages".into(), " and "),
        chain(&|_| "2".into(), " * "),
        "|upper|lower".repeat(60),
    );
    let m = [Message::new("user", "hi")];
    let before = render_unguarded(&src, &m, true, "", "").unwrap();
    assert_eq!(ChatTemplate::new(Some(src), "", "").render(&m, true).unwrap(), before);
}

#[test]
fn a_minijinja_value_is_the_24_bytes_the_budget_charges() {
    assert_eq!(std::mem::size_of::<minijinja::Value>(), NODE);
}

// ---- Hostile templates: stopped with an error, quickly, without the allocation ----

/// Renders `src` for one 20-byte message, expecting the value-budget error, within
/// a few seconds (the unguarded render would ask for gigabytes or more).
fn stopped(src: &str) -> ChatError {
    let t = ChatTemplate::new(Some(src.into()), "", "").named("hostile.gguf");
    let start = Instant::now();
    let e = t.render(&[Message::new("user", "01234567890123456789")], true).unwrap_err();
    assert!(start.elapsed() < Duration::from_secs(20), "{src}: took {:?}", start.elapsed());
    e
}

fn assert_too_big(src: &str) {
    let e = stopped(src);
    let limit = VALUE_SLACK + VALUE_FACTOR * (20 + "user".len());
    assert!(matches!(e, ChatError::TooBig { limit: l, input: 24, .. } if l == limit), "{src}: {e:?}");
    let msg = e.to_string();
    assert!(msg.starts_with("hostile.gguf: "), "{msg}");
    assert!(msg.contains(&format!("built a value of over {limit} bytes")), "{msg}");
}

#[test]
fn doubling_a_string_by_concatenation_is_stopped() {
    assert_too_big(
        "{% set ns = namespace(s=messages[0].content) %}{% for i in range(40) %}{% set ns.s = ns.s ~ ns.s %}{% endfor %}{{ ns.s|length }}",
    );
}

#[test]
fn doubling_a_string_by_addition_is_stopped() {
    assert_too_big(
        "{% set ns = namespace(s=messages[0].content) %}{% for i in range(40) %}{% set ns.s = ns.s + ns.s %}{% endfor %}{{ ns.s|length }}",
    );
}

#[test]
fn doubling_a_list_by_addition_is_stopped() {
    // Lazy in minijinja (a small value whose joining would build 2^40 items).
    assert_too_big(
        "{% set ns = namespace(l=[messages[0].content]) %}{% for i in range(40) %}{% set ns.l = ns.l + ns.l %}{% endfor %}{{ ns.l|join|length }}",
    );
}

#[test]
fn repetition_is_stopped() {
    assert_too_big("{{ (messages[0].content * 1000000)|length }}");
    assert_too_big("{% set ns = namespace(s='ab') %}{% for i in range(30) %}{% set ns.s = ns.s * 3 %}{% endfor %}{{ ns.s|length }}");
    assert_too_big("{% set l = [messages[0].content] * 100000000 %}{{ l|join|length }}");
    // A constant product, which minijinja would otherwise fold while compiling.
    assert_too_big("{{ ('x' * 100000000)|length }}");
}

#[test]
fn amplifying_filters_are_stopped() {
    let m = "{% set s = messages[0].content %}";
    assert_too_big(&format!("{m}{{{{ (s|replace('0', s * 150000))|length }}}}"));
    assert_too_big(&format!("{m}{{{{ ([s] * 1000)|join(s * 10000)|length }}}}"));
    assert_too_big("{% set ns = namespace(s=messages[0].content) %}{% for i in range(40) %}{% set ns.s = ns.s|replace('0', ns.s) %}{% endfor %}");
    assert_too_big("{% set ns = namespace(s=messages[0].content) %}{% for i in range(40) %}{% set ns.s = [ns.s, ns.s]|join %}{% endfor %}");
    assert_too_big(&format!("{m}{{{{ s|indent(100000000) }}}}"));
    assert_too_big("{{ '%100000000s'|format('x') }}");
    assert_too_big("{{ [1]|batch(1000000000, 'x') }}");
    assert_too_big("{{ [1]|slice(1000000000) }}");
    assert_too_big("{% set ns = namespace(s='ab') %}{% for i in range(30) %}{% set ns.s = ns.s|string ~ ns.s|pprint %}{% endfor %}");
    assert_too_big("{% set ns = namespace(s='a&') %}{% for i in range(100000) %}{% set ns.s = ns.s ~ ns.s|escape %}{% endfor %}");
    assert_too_big(&format!("{m}{{{{ ([s] * 3)|map('replace', '0', s * 100000)|list|length }}}}"));
    assert_too_big("{% set big = messages[0].content * 200000 %}{{ big|list|length }}");
}

#[test]
fn amplifying_string_methods_are_stopped() {
    assert_too_big(
        "{% set ns = namespace(s=messages[0].content) %}{% for i in range(40) %}{% set ns.s = ns.s.replace('0', ns.s) %}{% endfor %}{{ ns.s|length }}",
    );
    assert_too_big("{% set s = messages[0].content %}{{ s.join([s] * 100000000)|length }}");
    assert_too_big("{% set ns = namespace(s='ab') %}{% for i in range(40) %}{% set ns.s = ns.s.join([ns.s, ns.s]) %}{% endfor %}");
    assert_too_big("{{ '{:>100000000}'.format('x') }}");
    assert_too_big("{% set s = messages[0].content * 100000 %}{{ s.split('0')|length }}");
}

#[test]
fn captured_output_is_bounded_too() {
    // Blocks and macros capture into strings minijinja does not bound.
    assert_too_big("{% set ns = namespace(s=messages[0].content) %}{% for i in range(40) %}{% set t %}{{ ns.s }}{{ ns.s }}{% endset %}{% set ns.s = t %}{% endfor %}");
    assert_too_big("{% macro d(x) %}{{ x }}{{ x }}{% endmacro %}{% set ns = namespace(s='ab') %}{% for i in range(40) %}{% set ns.s = d(ns.s) %}{% endfor %}");
    assert_too_big(&format!(
        "{{% set t %}}{{% for i in range(100000) %}}{}{{% endfor %}}{{% endset %}}{{{{ t|length }}}}",
        "x".repeat(1000)
    ));
}

#[test]
fn nesting_without_end_is_stopped() {
    for src in [
        "{% set ns = namespace(l=[]) %}{% for i in range(100000) %}{% set ns.l = [ns.l] %}{% endfor %}{{ ns.l|length }}",
        "{% set ns = namespace(a=1) %}{% set ns.a = ns %}{{ ns }}",
        "{% set ns = namespace(a=1) %}{% set ns.a = [1, {'k': ns}] %}{{ ns }}",
        "{% set ns = namespace(c=namespace()) %}{% for i in range(100000) %}{% set ns.c = namespace(p=ns.c) %}{% endfor %}{{ ns }}",
    ] {
        let e = stopped(src);
        assert!(matches!(e, ChatError::TooDeep { .. }), "{src}: {e:?}");
        assert!(e.to_string().starts_with("hostile.gguf: "), "{e}");
    }
}

#[test]
fn reworking_a_large_value_on_every_step_is_stopped() {
    let e = stopped("{% set l = range(100000)|list %}{% for i in range(100000) %}{% set x = l|list %}{% endfor %}");
    assert!(matches!(e, ChatError::TooMuchWork { .. }), "{e:?}");
    assert!(e.to_string().contains("reworked over"), "{e}");
}

#[test]
fn other_templates_are_refused_by_name() {
    let e = ChatTemplate::new(Some("{% include 'chat' %}".into()), "", "").named("m.gguf").render(&[Message::new("user", "hi")], true).unwrap_err();
    assert!(matches!(e, ChatError::Unsupported { what: "`{% include %}`", .. }), "{e:?}");
    assert!(e.to_string().starts_with("m.gguf: "), "{e}");
}

#[test]
fn a_syntax_error_still_names_its_line() {
    let e = ChatTemplate::new(Some("a\nb\n{% if %}".into()), "", "").named("m.gguf").render(&[], true).unwrap_err();
    assert!(matches!(e, ChatError::Compile { .. }), "{e:?}");
    assert!(e.to_string().contains("chat:3"), "{e}");
}

#[test]
fn a_render_error_names_the_templates_line() {
    let e = ChatTemplate::new(Some("a\nb\n\n{{ 1 + 'x' }}".into()), "", "").named("m.gguf").render(&[], true).unwrap_err();
    assert!(matches!(e, ChatError::Render { .. }), "{e:?}");
    assert!(e.to_string().contains("chat:4"), "{e}");
}

#[test]
fn a_huge_error_message_is_cut() {
    let e = ChatTemplate::new(Some("{{ raise_exception(messages[0].content * 100000) }}".into()), "", "")
        .render(&[Message::new("user", "0123456789")], true)
        .unwrap_err();
    assert!(matches!(e, ChatError::Render { .. }), "{e:?}");
    assert!(e.to_string().len() < MESSAGE_CAP + 200, "{} bytes", e.to_string().len());
}
