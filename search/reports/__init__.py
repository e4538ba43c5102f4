"""`hpsearch report`: one self-contained HTML file, from the study database alone.

One module per figure family, as optuna.visualization does: each has a typed data step
(`*_info`, tested directly) and a plotly step (`plot_*`). Optuna's own figures are used as
they are. `sections` is the catalogue (which figures a study gets, with their captions) and
`page` the HTML around them. A figure that cannot be drawn for a study (too few trials, a
parameter that is not searched) is replaced by a sentence saying why; the rest of the report is
unaffected. plotly.js is embedded once, so the file opens without a network.
"""

from hpsearch.reports.class_weights import ClassWeights
from hpsearch.reports.class_weights import class_weights_info
from hpsearch.reports.curves import Line
from hpsearch.reports.curves import curves_info
from hpsearch.reports.curves import intermediate_info
from hpsearch.reports.curves import weight_norm_info
from hpsearch.reports.front import ParetoInfo
from hpsearch.reports.front import pareto_info
from hpsearch.reports.learning_rate import LearningRatePoint
from hpsearch.reports.learning_rate import learning_rate_info
from hpsearch.reports.page import build_report
from hpsearch.reports.sections import Section
from hpsearch.reports.sections import comparison_sections
from hpsearch.reports.sections import study_sections

__all__ = [
    "ClassWeights",
    "LearningRatePoint",
    "Line",
    "ParetoInfo",
    "Section",
    "build_report",
    "class_weights_info",
    "comparison_sections",
    "curves_info",
    "intermediate_info",
    "learning_rate_info",
    "pareto_info",
    "study_sections",
    "weight_norm_info",
]
