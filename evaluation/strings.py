"""Report text in English and Japanese: one table, one key per phrase.

``text(lang, key, **fmt)`` looks a key up; a key missing from a language renders as
``[[key]]`` so an untranslated phrase is visible on the page and caught by the tests.
Figures are labelled in the report's language too: Japanese text is drawn with the
bundled font (`fonts.py`), so no CJK font is needed on the server or the reader's machine.
"""
from __future__ import annotations

LANGS = ("en", "ja")
MISSING = "[[{key}]]"

STRINGS: dict[str, dict[str, str]] = {
    "en": {
        "eval_title": "Rank evaluation: {corpus}",
        "probe_title": "Synthetic rank probe: {task} neighbour, d={dim}, N={points}",
        "generated": "Generated {created} from results.json (git {git}).",
        "section_summary": "Summary",
        "section_recommendation": "Recommendation",
        "section_attention": "Does the encoder use its attention?",
        "section_plots": "Quality, latency and cost",
        "section_significance": "Significance against the baseline",
        "section_roi": "Business impact (ROI)",
        "section_setup": "Setup: hardware, versions, corpus",
        "section_probe_table": "Results per rank",
        "section_probe_plot": "Error per rank",
        "section_baselines": "Trivial baselines",
        "col_variant": "Variant", "col_rank": "Rank", "col_heads": "Heads",
        "col_precision": "Precision", "col_precision_delta": "nDCG@10 vs fp32",
        "col_ndcg": "nDCG@10", "col_mrr": "MRR@10", "col_r1": "R@1", "col_r10": "R@10",
        "col_r100": "R@100", "col_sig": "vs baseline", "col_enc_qps": "Docs/s",
        "col_qenc": "Query enc p50/p95 ms", "col_search": "Search p50/p95 ms",
        "col_e2e": "Service p50/p95 ms", "col_flops": "GFLOPs/token",
        "col_params": "Params (M)", "col_size": "Model MB", "col_index": "Index MB",
        "col_far": "Farthest agreement", "col_seeds": "Seeds",
        "col_mse": "MSE (mean over seeds)", "col_mse_range": "MSE min–max",
        "col_acc": "Top-1 accuracy", "col_qk": "Q/K params",
        "col_metric": "Metric", "col_pvalue": "p-value", "col_delta": "Δ vs baseline",
        "col_test": "Test", "col_layer": "Layer", "col_entropy": "Normalised entropy",
        "col_baseline": "Predictor",
        "sig_legend": "▲ significantly better, ▼ significantly worse than the baseline "
                      "({test}, p < {max_p}); – not significant.",
        "baseline_marker": "baseline",
        "recommend": "Recommended: <b>{name}</b> — the cheapest variant (fewest FLOPs per "
                     "token, then lowest query latency) whose nDCG@10 ({ndcg}) is not "
                     "significantly worse than the best ({best}, {best_ndcg}).",
        "recommend_none": "No recommendation: no variant has quality results.",
        "recommend_same": "The best variant is also the cheapest that matches it.",
        "attention_intro": "Quality drop when every attention layer is replaced by uniform "
                           "attention (mean of the values over real tokens), and attention "
                           "entropy per layer (1.0 = uniform). If the drop is near zero, the "
                           "encoder does not use attention and its rank cannot matter.",
        "attention_drop": "{name}: nDCG@10 {full} with attention, {ablated} with uniform "
                          "attention (drop {drop}).",
        "attention_verdict_uses": "The encoder uses its attention: comparing ranks is meaningful.",
        "attention_verdict_unused": "Warning: the encoder barely uses its attention "
                                    "(drop < {threshold}); rank differences will be noise.",
        "attention_none": "No attention check was run (spec: attention_check: none).",
        "plot_quality_rank": "Quality vs rank",
        "plot_latency_rank": "Latency vs rank",
        "plot_pareto": "Quality vs latency (Pareto frontier marked)",
        "plot_probe": "MSE per rank (log scale) with trivial baselines",
        "roi_intro": "Differences from the baseline turned into money with the assumptions "
                     "below. A query counts as answered when a relevant document is in the "
                     "top 10 (hit rate@10). Compute cost scales with measured single-query "
                     "CPU time.",
        "roi_assumptions": "Assumptions",
        "roi_daily": "Net per day", "roi_yearly": "Net per year",
        "roi_value": "Δ value per day", "roi_compute": "Δ compute cost per day",
        "roi_hits": "Hit rate@10", "roi_latency_ok": "Within latency budget",
        "roi_none": "No business inputs given (run with --roi FILE).",
        "yes": "yes", "no": "no",
        "setup_hardware": "Hardware", "setup_versions": "Versions", "setup_corpus": "Corpus",
        "setup_machine_note": "Measured on this machine in the same run; latency is per "
                              "single query on {threads} thread(s).",
        "corpus_stats": "{docs} documents, {queries} test queries, {qrels} relevance judgements.",
        "probe_intro": "One attention layer (the encoder's RankedAttention) trained to return "
                       "the {task} point of {points} points on the unit sphere in {dim} "
                       "dimensions. Heads per rank: {budget}. Full rank can represent the "
                       "target exactly; lower rank cannot (Amsel, Yehudai & Bruna 2024).",
        "budget_equal": "equal query/key budget (heads·rank ≥ dim)",
        "budget_fixed": "fixed head count",
        "probe_effect_yes": "The rank effect is reproduced: full rank reaches MSE {full}, "
                            "the best lower rank only {best_low} ({ratio}× higher) with an "
                            "equal or larger query/key budget.",
        "probe_effect_no": "The rank effect is NOT clearly reproduced in this run: full rank "
                           "MSE {full}, best lower rank {best_low}.",
        "baseline_zero": "Zero vector",
        "baseline_attention_free": "Best attention-free (least squares on token and set mean)",
        "plot_axis_rank": "rank (query/key width per head)",
        "plot_axis_latency": "query encode + search (ms)",
        "plot_axis_latency_p50": "query latency p50 (encode + search, ms)",
        "plot_legend_pareto": "Pareto frontier",
        "plot_legend_bm25": "BM25 ({analyzer} analyzer)",
        "kind_convert": "converted", "kind_train": "trained", "kind_folder": "model folder",
        "probe_axis_rank": "rank r (query/key width per head)",
        "probe_legend_seed": "seed", "probe_legend_mean": "mean over seeds",
        "probe_legend_baseline": "baseline: {name}",
        "section_summary_cost": "Cost and latency",
        "precision_change": "Precision: {variant} ({precision}) moves nDCG@10 by {delta:+.4f} "
                            "against fp32 (within {tolerance}).",
        "precision_change_large": "QUALITY CHANGE: {variant} ({precision}) moves nDCG@10 by "
                                  "{delta:+.4f} against fp32, more than {tolerance}: not a drop-in "
                                  "replacement for fp32 on this corpus.",
        "small_sample": "Caution: this comparison rests on {n} test queries (fewer than "
                        "{minimum}). With so few queries, real differences often do not reach "
                        "significance, so “not significantly worse” is weak evidence. Add "
                        "queries before deciding.",
        "lexical_note": "The BM25 reference analyses text with the '{analyzer}' analyzer "
                        "(corpus language: {language}, set by {source}).",
        "source_--language": "--language", "source_spec": "the spec",
        "source_corpus": "the corpus's ranksearch-corpus.json", "source_default": "the default",
        "roi_queries_per_day": "queries per day",
        "roi_value_answered": "value of a query answered in the top 10",
        "roi_cost_miss": "cost of a miss (no relevant document in the top 10)",
        "roi_server_cost": "server cost per hour",
        "roi_budget": "latency budget (p95 of query encoding + search)",
        "roi_days": "days per year",
        "roi_quality_measure": "quality measure",
        "roi_quality_measure_text": "hit_rate@10 on this corpus's test queries, assumed to carry "
                                    "over to production queries",
        "roi_compute_measure": "compute measure",
        "roi_compute_measure_text": "single-query encode p50 + search p50 measured here on "
                                    "{threads} thread(s); one server process answers one query "
                                    "at a time; indexing cost excluded",
        "roi_baseline": "baseline", "roi_notes": "notes", "none": "none",
        "hw_cpu": "CPU", "hw_logical_cpus": "logical CPUs", "hw_usable_cpus": "usable CPUs",
        "hw_load_average_1_5_15min": "load average (1/5/15 min)",
        "hw_torch_threads": "torch threads", "hw_memory_bytes": "memory (bytes)",
        "hw_platform": "platform", "hw_machine": "machine", "hw_threads_used": "threads used",
        "console_sig_legend": "sig: nDCG@10 against the baseline {base} ({test} test, "
                              "p < {max_p}): + significantly better, - significantly worse, "
                              "ns not significant, base the baseline; p: its p-value.",
        "console_recommendation": "recommendation: {name} (best: {best}); rule: {rule}",
        "recommend_rule": "cheapest (FLOPs/token, then query latency p50) among variants whose "
                          "nDCG@10 is not significantly worse than the best ({test}, p < {max_p})",
        "footer": "Self-contained report: no external resources. ranksearch {version}.",
        "section_hybrid": "Dense, lexical and hybrid retrieval",
        "hybrid_intro": "Each hybrid variant fuses, per query, the run of a dense variant with "
                        "the BM25 run (ranx rank fusion: RRF, or a weighted sum of normalised "
                        "scores). Tuned variants fit their parameters on the train judgements "
                        "and are scored here on the evaluated split.",
        "plot_hybrid": "nDCG@10 and MRR@10: dense, lexical and hybrid (D/L: the hybrid against "
                       "its dense/lexical run; ▲ better, ▼ worse, – not significant)",
        "col_fuses": "Fuses", "col_fusion": "Fusion", "col_fusion_params": "Parameters",
        "col_fitted_on": "Parameters from", "col_vs_dense": "vs dense",
        "col_vs_lexical": "vs lexical",
        "hybrid_from_spec": "the spec",
        "hybrid_fitted": "fitted on {split} ({queries} queries, {metric} {score})",
        "hybrid_legend": "Δ and p: the hybrid minus the run it fuses, paired ({test}); "
                         "▲ significantly better, ▼ significantly worse (p < {max_p}); "
                         "– not significant.",
        # live-experiment readout (ranksearch ab report); *_head: columns split on '|'
        "ab_title": "Live experiment: {collection}",
        "ab_state": "Default variant: {default}. Split weights: {weights}. Settings: {settings}.",
        "ab_split": "Split traffic (per answering variant)",
        "ab_split_head": "variant|impressions|CTR|abandonment|MRR of clicks|p vs default",
        "ab_inter": "Interleaving (team draft)",
        "ab_inter_head": "A|B|impressions|A wins|B wins|ties|preference for A|95% CI|p (sign test)",
        "ab_inter_note": "A tie includes impressions without a click. The sign test compares "
                         "A wins with B wins (exact binomial, p = 0.5); p < 0.05 means users "
                         "prefer one side.",
        "ab_shadow": "Shadow comparisons",
        "ab_shadow_head": "primary|shadow|requests|overlap@k|Kendall tau|primary p50/p95 ms|shadow p50/p95 ms",
        "ab_shadow_counts": "Shadow searches: {done} done, {dropped} dropped (queue full), {failed} failed.",
        "ab_builds": "Variant builds",
        "ab_builds_head": "variant|state|documents|of|error",
        "ab_audit": "Audit log (newest first)",
        "ab_audit_head": "time (UTC)|who|action|details",
        "ab_none": "none yet",
        "ab_small": "Fewer than 100 decided impressions: treat the preference as preliminary.",
    },
    "ja": {
        "eval_title": "ランク評価: {corpus}",
        "probe_title": "合成ランクプローブ: {task}近傍, d={dim}, N={points}",
        "generated": "results.json から {created} に生成 (git {git})。",
        "section_summary": "概要",
        "section_recommendation": "推奨",
        "section_attention": "エンコーダはアテンションを使っているか",
        "section_plots": "品質・レイテンシ・コスト",
        "section_significance": "ベースラインとの有意差",
        "section_roi": "ビジネス効果 (ROI)",
        "section_setup": "実行環境: ハードウェア・バージョン・コーパス",
        "section_probe_table": "ランク別の結果",
        "section_probe_plot": "ランク別の誤差",
        "section_baselines": "自明な基準予測",
        "col_variant": "バリアント", "col_rank": "ランク", "col_heads": "ヘッド数",
        "col_precision": "精度", "col_precision_delta": "nDCG@10 の fp32 との差",
        "col_ndcg": "nDCG@10", "col_mrr": "MRR@10", "col_r1": "R@1", "col_r10": "R@10",
        "col_r100": "R@100", "col_sig": "ベースライン比", "col_enc_qps": "文書/秒",
        "col_qenc": "クエリ符号化 p50/p95 ms", "col_search": "検索 p50/p95 ms",
        "col_e2e": "サービス経由 p50/p95 ms", "col_flops": "GFLOPs/トークン",
        "col_params": "パラメータ数 (百万)", "col_size": "モデル MB", "col_index": "索引 MB",
        "col_far": "最遠点一致率", "col_seeds": "シード数",
        "col_mse": "MSE (シード平均)", "col_mse_range": "MSE 最小–最大",
        "col_acc": "Top-1 正解率", "col_qk": "Q/K パラメータ数",
        "col_metric": "指標", "col_pvalue": "p 値", "col_delta": "ベースラインとの差",
        "col_test": "検定", "col_layer": "層", "col_entropy": "正規化エントロピー",
        "col_baseline": "予測器",
        "sig_legend": "▲ ベースラインより有意に良い、▼ 有意に悪い ({test}, p < {max_p})、"
                      "– 有意差なし。",
        "baseline_marker": "ベースライン",
        "recommend": "推奨: <b>{name}</b> — nDCG@10 ({ndcg}) が最良 ({best}, {best_ndcg}) "
                     "より有意に劣らないバリアントのうち、最も安価なもの (トークンあたり "
                     "FLOPs が最小、次にクエリレイテンシが最小)。",
        "recommend_none": "推奨なし: 品質結果のあるバリアントがありません。",
        "recommend_same": "最良のバリアント自身が、それに並ぶ最も安価なバリアントです。",
        "attention_intro": "すべてのアテンション層を一様アテンション (実トークン上の値の平均) に"
                           "置き換えたときの品質低下と、層ごとのアテンションエントロピー "
                           "(1.0 = 一様)。低下がほぼゼロなら、エンコーダはアテンションを使って"
                           "おらず、ランクは意味を持ちません。",
        "attention_drop": "{name}: アテンションありで nDCG@10 {full}、一様アテンションで "
                          "{ablated} (低下 {drop})。",
        "attention_verdict_uses": "エンコーダはアテンションを使っています: ランクの比較は有意義です。",
        "attention_verdict_unused": "警告: エンコーダはアテンションをほとんど使っていません "
                                    "(低下 < {threshold})。ランクの差はノイズになります。",
        "attention_none": "アテンション検査は実行されていません (spec: attention_check: none)。",
        "plot_quality_rank": "品質とランク",
        "plot_latency_rank": "レイテンシとランク",
        "plot_pareto": "品質とレイテンシ (パレートフロンティアを表示)",
        "plot_probe": "ランク別 MSE (対数軸) と自明な基準",
        "roi_intro": "ベースラインとの差を、以下の前提で金額に換算します。関連文書が上位 10 件に"
                     "入ったクエリを「回答できた」と数えます (hit rate@10)。計算コストは"
                     "実測した 1 クエリあたりの CPU 時間に比例します。",
        "roi_assumptions": "前提",
        "roi_daily": "1 日あたりの純効果", "roi_yearly": "1 年あたりの純効果",
        "roi_value": "1 日あたりの価値の差", "roi_compute": "1 日あたりの計算コストの差",
        "roi_hits": "Hit rate@10", "roi_latency_ok": "レイテンシ予算内",
        "roi_none": "ビジネス入力がありません (--roi FILE で指定)。",
        "yes": "はい", "no": "いいえ",
        "setup_hardware": "ハードウェア", "setup_versions": "バージョン", "setup_corpus": "コーパス",
        "setup_machine_note": "同じ実行の中でこのマシン上で測定。レイテンシは {threads} スレッドでの"
                              "単一クエリあたりの値です。",
        "corpus_stats": "文書 {docs} 件、テストクエリ {queries} 件、関連判定 {qrels} 件。",
        "probe_intro": "1 層のアテンション (エンコーダと同じ RankedAttention) を、{dim} 次元の"
                       "単位球面上の {points} 点から{task}点を返すように学習させました。"
                       "ランクごとのヘッド数: {budget}。フルランクは目標を厳密に表現できますが、"
                       "低ランクではできません (Amsel, Yehudai & Bruna 2024)。",
        "budget_equal": "クエリ/キーの予算が等しい (ヘッド数·ランク ≥ 次元)",
        "budget_fixed": "ヘッド数固定",
        "probe_effect_yes": "ランクの効果を再現: フルランクの MSE は {full}、低ランクの最良値は "
                            "{best_low} ({ratio} 倍) で、クエリ/キーの予算は同等以上です。",
        "probe_effect_no": "この実行ではランクの効果が明確には再現されませんでした: フルランク MSE "
                           "{full}、低ランクの最良値 {best_low}。",
        "baseline_zero": "ゼロベクトル",
        "baseline_attention_free": "アテンションを使わない最良予測 (トークンと集合平均への最小二乗)",
        "plot_axis_rank": "ランク (ヘッドあたりのクエリ/キー幅)",
        "plot_axis_latency": "クエリ符号化 + 検索 (ミリ秒)",
        "plot_axis_latency_p50": "クエリレイテンシ p50 (符号化 + 検索, ミリ秒)",
        "plot_legend_pareto": "パレートフロンティア",
        "plot_legend_bm25": "BM25 ({analyzer} 解析器)",
        "kind_convert": "変換モデル", "kind_train": "学習モデル", "kind_folder": "モデルフォルダ",
        "probe_axis_rank": "ランク r (ヘッドあたりのクエリ/キー幅)",
        "probe_legend_seed": "シード", "probe_legend_mean": "シード平均",
        "probe_legend_baseline": "基準: {name}",
        "section_summary_cost": "コストとレイテンシ",
        "precision_change": "精度: {variant} ({precision}) の nDCG@10 は fp32 から {delta:+.4f} "
                            "変化しました (±{tolerance} 以内)。",
        "precision_change_large": "品質の変化: {variant} ({precision}) の nDCG@10 は fp32 から "
                                  "{delta:+.4f} 変化しました (±{tolerance} を超えています)。"
                                  "このコーパスでは fp32 の代わりにそのまま使えません。",
        "small_sample": "注意: この比較はテストクエリ {n} 件 ({minimum} 件未満) に基づいています。"
                        "クエリがこれほど少ないと実際の差も有意になりにくく、「有意に劣らない」"
                        "は弱い根拠にすぎません。判断の前にクエリを増やしてください。",
        "lexical_note": "BM25 基準は '{analyzer}' 解析器でテキストを解析しています "
                        "(コーパスの言語: {language}、設定元: {source})。",
        "source_--language": "--language 指定", "source_spec": "spec",
        "source_corpus": "コーパスの ranksearch-corpus.json", "source_default": "既定値",
        "roi_queries_per_day": "1 日あたりのクエリ数",
        "roi_value_answered": "上位 10 件で回答できたクエリ 1 件の価値",
        "roi_cost_miss": "回答できなかった (上位 10 件に関連文書がない) クエリ 1 件の損失",
        "roi_server_cost": "サーバー 1 時間あたりの費用",
        "roi_budget": "レイテンシ予算 (クエリ符号化 + 検索の p95)",
        "roi_days": "年間日数",
        "roi_quality_measure": "品質の尺度",
        "roi_quality_measure_text": "このコーパスのテストクエリでの hit_rate@10 (本番のクエリでも"
                                    "同じと仮定)",
        "roi_compute_measure": "計算量の尺度",
        "roi_compute_measure_text": "ここで {threads} スレッドで測定した単一クエリの符号化 p50 + "
                                    "検索 p50。サーバープロセス 1 つが一度に 1 クエリに応答。"
                                    "索引作成コストは含まない",
        "roi_baseline": "ベースライン", "roi_notes": "備考", "none": "なし",
        "hw_cpu": "CPU", "hw_logical_cpus": "論理 CPU 数", "hw_usable_cpus": "使用可能 CPU 数",
        "hw_load_average_1_5_15min": "ロードアベレージ (1/5/15 分)",
        "hw_torch_threads": "torch スレッド数", "hw_memory_bytes": "メモリ (バイト)",
        "hw_platform": "プラットフォーム", "hw_machine": "アーキテクチャ",
        "hw_threads_used": "使用スレッド数",
        "console_sig_legend": "sig: ベースライン {base} に対する nDCG@10 の有意差 ({test} 検定, "
                              "p < {max_p}): + 有意に良い、- 有意に悪い、ns 有意差なし、"
                              "base ベースライン。p: その p 値。",
        "console_recommendation": "推奨: {name} (最良: {best})。規則: {rule}",
        "recommend_rule": "nDCG@10 が最良より有意に劣らないバリアントのうち最も安価なもの "
                          "(FLOPs/トークン、次にクエリレイテンシ p50 の順; {test}, p < {max_p})",
        "footer": "自己完結型レポート: 外部リソースなし。ranksearch {version}。",
        "section_hybrid": "密ベクトル検索・語彙検索・ハイブリッド検索",
        "hybrid_intro": "各ハイブリッドバリアントは、クエリごとに密ベクトルバリアントの結果と "
                        "BM25 の結果を融合します (ranx によるランク融合: RRF、または正規化した"
                        "スコアの重み付き和)。チューニングするバリアントは学習用 (train) の"
                        "関連判定でパラメータを当てはめ、ここでは評価用の分割で採点しています。",
        "plot_hybrid": "nDCG@10 と MRR@10: 密ベクトル・語彙・ハイブリッド (D/L: ハイブリッドと"
                       "融合元の密ベクトル/語彙検索との比較。▲ 有意に良い、▼ 有意に悪い、"
                       "– 有意差なし)",
        "col_fuses": "融合元", "col_fusion": "融合方式", "col_fusion_params": "パラメータ",
        "col_fitted_on": "パラメータの出所", "col_vs_dense": "密ベクトル検索との差",
        "col_vs_lexical": "語彙検索との差",
        "hybrid_from_spec": "spec の指定値",
        "hybrid_fitted": "{split} で当てはめ (クエリ {queries} 件、{metric} {score})",
        "hybrid_legend": "Δ と p: ハイブリッドから融合元の結果を引いた差と、対応のある検定 "
                         "({test}) の p 値。▲ 有意に良い、▼ 有意に悪い (p < {max_p})、"
                         "– 有意差なし。",
        # live-experiment readout (ranksearch ab report)
        "ab_title": "ライブ実験: {collection}",
        "ab_state": "既定のバリアント: {default}。トラフィック配分: {weights}。設定: {settings}。",
        "ab_split": "トラフィック分割(応答したバリアント別)",
        "ab_split_head": "バリアント|表示回数|クリック率|離脱率|クリックのMRR|既定とのp値",
        "ab_inter": "インターリービング(チームドラフト)",
        "ab_inter_head": "A|B|表示回数|Aの勝ち|Bの勝ち|引き分け|Aが選ばれる割合|95%信頼区間|p値(符号検定)",
        "ab_inter_note": "引き分けにはクリックのない表示を含みます。符号検定はAの勝ちとBの勝ちを"
                         "比較します(二項検定、p = 0.5)。p < 0.05 ならユーザーはどちらかを"
                         "好んでいます。",
        "ab_shadow": "シャドー比較",
        "ab_shadow_head": "本番|シャドー|リクエスト数|overlap@k|ケンドールのτ|本番 p50/p95 ms|シャドー p50/p95 ms",
        "ab_shadow_counts": "シャドー検索: 完了 {done}、破棄 {dropped}(キュー満杯)、失敗 {failed}。",
        "ab_builds": "バリアントの構築",
        "ab_builds_head": "バリアント|状態|文書数|全体|エラー",
        "ab_audit": "監査ログ(新しい順)",
        "ab_audit_head": "時刻 (UTC)|実行者|操作|詳細",
        "ab_none": "まだありません",
        "ab_small": "判定のついた表示が100件未満です。好みの判定は暫定的なものとして扱ってください。",
    },
}

TASK_NAMES = {"en": {"farthest": "farthest", "nearest": "nearest"},
              "ja": {"farthest": "最遠", "nearest": "最近傍"}}


def text(lang: str, key: str, **fmt) -> str:
    table = STRINGS.get(lang, STRINGS["en"])
    template = table.get(key)
    if template is None:
        return MISSING.format(key=key)
    return template.format(**fmt) if fmt else template


def columns(lang: str, key: str) -> list[str]:
    """A table header stored as one phrase, columns separated by ``|``."""
    return text(lang, key).split("|")
