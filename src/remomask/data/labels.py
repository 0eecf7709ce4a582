"""Labels of the embedded dataset and the captions written from them.

Every clip of the embedded dataset has real labels from its source: a Bandai-Namco ``content``
(what is done) and ``style`` (how), or an HDM05 motion class. This module holds

* the wording of each label, written after looking at rendered clips (see the dataset card),
* the left/right mirroring of labels and captions (HumanML3D mirrors its data the same way, docs/design.md §2.2),
* a deterministic paraphrase generator (at least 3 captions per clip), and
* a small closed-vocabulary POS tagger for the HumanML3D ``caption#word/POS ...#start#end`` lines.
  All caption words come from the tables below, so a lexicon lookup is exact; a word missing from
  the lexicon is a bug and raises.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

__all__ = [
    "ClipLabels",
    "CONTENT_PHRASES",
    "STYLE_WORDS",
    "HDM05_PHRASES",
    "CMU_PHRASES",
    "IDLE_PHRASES",
    "cmu_action",
    "mirror_label",
    "mirror_text",
    "make_captions",
    "pos_tag",
    "bandai_style_name",
]

# ----------------------------------------------------------------------------------------------
# Bandai-Namco contents: verb phrases (third person, present tense). Side-specific wording only
# where the clip shows the side; mirroring swaps it.
# ----------------------------------------------------------------------------------------------
CONTENT_PHRASES: dict[str, tuple[str, ...]] = {
    "walk": ("walks forward", "walks straight ahead", "takes a few steps forward"),
    "run": ("runs forward", "jogs straight ahead", "runs ahead at a steady pace"),
    "dash": ("sprints forward", "dashes forward at full speed", "breaks into a fast sprint"),
    "walk-back": ("walks backwards", "steps backwards", "moves backwards step by step"),
    # Bandai-1 walk-left/right: no turn (yaw change ~4 deg), ~3.7 m forward and ~2.1 m to the side
    "walk-left": ("walks diagonally forward to the left", "walks forward and to the left",
                  "walks ahead while drifting to the left"),
    "walk-right": ("walks diagonally forward to the right", "walks forward and to the right",
                   "walks ahead while drifting to the right"),
    "bow": ("bows", "bows forward from the waist", "makes a polite bow"),
    # bye: the right wrist rises 0.7 m above the left in the median clip (mirrors say "left")
    "bye": ("waves goodbye with the right hand", "raises the right hand and waves goodbye",
            "says goodbye with a wave of the right hand"),
    "byebye": ("waves goodbye with both arms", "waves both hands to say goodbye",
               "waves a big goodbye with both arms"),
    # guide: the right wrist travels 2.7x as far as the left; respond (one clip): left hand raised
    "guide": ("points the way with the right arm", "gestures with the right arm to show the way",
              "guides someone with a sweeping gesture of the right arm"),
    "respond": ("raises the left hand in response", "answers by raising the left hand",
                "responds to a call with a raised left hand"),
    "call": ("calls out with hands around the mouth", "shouts to someone with cupped hands",
             "calls to someone far away"),
    "punch": ("throws punches", "punches forward with the fists", "throws a series of punches"),
    # kick: the right foot rises 1 m higher than the left
    "kick": ("kicks forward with the right leg", "throws a kick with the right leg",
             "kicks out with the right foot"),
    "slash": ("slashes with a sword", "swings a sword to slash", "cuts the air with a sword"),
    "dance-long": ("dances", "performs a long dance", "dances to music"),
    "dance-short": ("dances", "performs a short dance", "does a short dance routine"),
    "walk-turn-left": ("walks and turns left", "walks forward and turns to the left",
                       "walks in a curve to the left"),
    "walk-turn-right": ("walks and turns right", "walks forward and turns to the right",
                        "walks in a curve to the right"),
    "wave-both-hands": ("waves both hands", "waves with both hands above the head",
                        "raises both arms and waves"),
    "wave-left-hand": ("waves the left hand", "waves with the left hand",
                       "raises the left hand and waves"),
    "wave-right-hand": ("waves the right hand", "waves with the right hand",
                        "raises the right hand and waves"),
    "raise-up-both-hands": ("raises both hands", "raises both arms up high",
                            "lifts both hands above the head"),
    "raise-up-left-hand": ("raises the left hand", "raises the left arm up high",
                           "lifts the left hand above the head"),
    "raise-up-right-hand": ("raises the right hand", "raises the right arm up high",
                            "lifts the right hand above the head"),
}

# HDM05 motion classes (file names HDM_<actor>_<class>_<n>_120.amc) and their mirrored twins.
HDM05_PHRASES: dict[str, tuple[str, ...]] = {
    "depositFloorR": ("bends down and puts something on the floor with the right hand",
                      "places an object on the ground with the right hand",
                      "crouches to set something down on the floor with the right hand"),
    "depositFloorL": ("bends down and puts something on the floor with the left hand",
                      "places an object on the ground with the left hand",
                      "crouches to set something down on the floor with the left hand"),
    "elbowToKnee1RepsLelbowStart": (
        "touches the left elbow to the right knee and then the right elbow to the left knee",
        "does an elbow to knee exercise starting with the left elbow",
        "brings each elbow to the opposite knee, left elbow first"),
    "elbowToKnee1RepsRelbowStart": (
        "touches the right elbow to the left knee and then the left elbow to the right knee",
        "does an elbow to knee exercise starting with the right elbow",
        "brings each elbow to the opposite knee, right elbow first"),
    "grabHighR": ("reaches up high and grabs something with the right hand",
                  "stretches the right arm up to grab something from a shelf",
                  "grabs an object from high up with the right hand"),
    "grabHighL": ("reaches up high and grabs something with the left hand",
                  "stretches the left arm up to grab something from a shelf",
                  "grabs an object from high up with the left hand"),
    "hopBothLegs1hops": ("hops once on both feet", "jumps forward once with both feet together",
                         "does a single two footed hop"),
    "jogLeftCircle4StepsRstart": ("jogs in a small circle to the left",
                                  "runs a few steps in a circle turning left",
                                  "jogs around to the left, starting with the right foot"),
    "jogRightCircle4StepsLstart": ("jogs in a small circle to the right",
                                   "runs a few steps in a circle turning right",
                                   "jogs around to the right, starting with the left foot"),
    "kickLFront1Reps": ("kicks forward with the left leg", "does a front kick with the left foot",
                        "kicks to the front once with the left leg"),
    "kickRFront1Reps": ("kicks forward with the right leg",
                        "does a front kick with the right foot",
                        "kicks to the front once with the right leg"),
    "lieDownFloor": ("lies down on the floor", "gets down and lies flat on the ground",
                     "lowers the body to lie on the floor"),
    "rotateArmsBothBackward1Reps": ("rotates both arms backwards",
                                    "circles both arms backwards once",
                                    "swings both arms around in a backward circle"),
    "sneak2StepsLStart": ("sneaks forward two steps, starting with the left foot",
                          "tiptoes forward carefully for two steps",
                          "creeps forward quietly, left foot first"),
    "sneak2StepsRStart": ("sneaks forward two steps, starting with the right foot",
                          "tiptoes forward carefully for two steps",
                          "creeps forward quietly, right foot first"),
    "squat1Reps": ("does a squat", "squats down and stands back up",
                   "bends the knees into a deep squat and rises"),
    "throwBasketball": ("throws a basketball", "throws a ball with both hands",
                        "shoots a basketball from the chest"),
}

# CMU actions (docs/data.md "Dataset v2"): one label per group of CMU index descriptions
# (``cmu_action``). Walks, runs and punches join the Bandai labels of the same name.
CMU_PHRASES: dict[str, tuple[str, ...]] = {
    "walk": CONTENT_PHRASES["walk"],
    "run": CONTENT_PHRASES["run"],
    "punch": CONTENT_PHRASES["punch"],
    "walk-uneven": ("walks over uneven ground", "walks carefully across uneven terrain",
                    "steps over bumpy ground while walking"),
    "jump": ("jumps", "jumps forward with both feet", "leaps up and lands on both feet"),
    "climb": ("climbs on a playground frame", "climbs up and moves around on a climbing frame",
              "climbs a ladder on a playground"),
    "reach-up": ("jumps up to grab something high", "reaches up high on tiptoe",
                 "stretches up on the toes to reach for something"),
    "pick-up": ("bends over and picks something up", "scoops something up from the floor and rises",
                "bends down, picks up an object and lifts the arm"),
    "wash": ("washes the body", "rubs the arms and body as if washing",
             "washes the body as if in the shower"),
    "swordplay": ("fences with a sword", "swings a sword back and forth",
                  "practices swordplay with thrusts and swings"),
    "dribble": ("dribbles a basketball", "bounces a basketball while moving",
                "dribbles a ball with one hand"),
    "ballet": ("performs ballet", "dances ballet with leaps and turns",
               "does a ballet routine with spins and jumps"),
    "salsa": ("dances salsa", "dances salsa with quick steps and turns",
              "does salsa steps to the music"),
    "indian-dance": ("performs an indian dance", "dances a classical indian dance",
                     "does an indian dance with expressive arms"),
    "karate": ("performs karate moves", "does a karate form with punches and blocks",
               "practices martial arts strikes and blocks"),
    "karate-kick": ("does karate kicks", "practices martial arts kicks",
                    "kicks high in a karate stance"),
}

# ReActIdle (acted and genuine idle): a person standing, shifting their weight.
IDLE_PHRASES: dict[str, tuple[str, ...]] = {
    "idle": ("stands still, shifting their weight", "stands idle and shifts the weight from foot to foot",
             "stands in place and waits, moving a little"),
}

# CMU index descriptions -> action label, first match wins (``cmu_action``).
_CMU_RULES: tuple[tuple[str, str], ...] = (
    (r"uneven terrain", "walk-uneven"),
    (r"^basketball", "dribble"),
    (r"^dance", "ballet"),
    (r"^playground - forward jumps", "jump"),
    (r"^playground", "climb"),
    (r"jump up to grab|reach for", "reach-up"),
    (r"^(forward jump|jump)", "jump"),
    (r"scoop up", "pick-up"),
    (r"wash self", "wash"),
    (r"swordplay", "swordplay"),
    (r"punch/strike", "punch"),
    (r"^(front kick|mawashigeri|yokogeri)$", "karate-kick"),
    (r"^(empi|gedanbarai|heiansyodan|oiduki|syutouuke)$", "karate"),
    (r"^run", "run"),
    (r"walk", "walk"),
)


def cmu_action(description: str | None, path: str = "") -> str:
    """The action label of a CMU trial from its CMU index description (or, for the trials the
    index does not name, from the folder of its copy: acRNN ``salsa/`` and ``indian/``).

    Raises:
        KeyError: a description no rule covers (add a rule to ``_CMU_RULES``).
    """
    if "/salsa/" in path:
        return "salsa"
    if "/indian/" in path:
        return "indian-dance"
    text = (description or "").strip().lower()
    for pattern, action in _CMU_RULES:
        if re.search(pattern, text):
            return action
    raise KeyError(f"no action label for CMU description {description!r} ({path})")


# Bandai-Namco styles: ("adverbial phrase", "adjective for 'a ... person'", "short tag").
# ``normal`` has no wording: captions of normal clips describe only the content.
STYLE_WORDS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "normal": ((), ()),
    "happy": (("happily", "cheerfully", "in a happy mood"), ("happy", "cheerful")),
    "sad": (("sadly", "in a sad, downcast way", "with drooping shoulders"), ("sad", "gloomy")),
    "angry": (("angrily", "in an angry, aggressive way", "furiously"), ("angry", "furious")),
    "proud": (("proudly", "with the chest puffed out", "in a proud manner"), ("proud",)),
    "not-confident": (("timidly", "without confidence", "hesitantly"),
                      ("timid", "insecure", "shy")),
    "masculinity": (("in a masculine way", "with a broad, masculine posture"),
                    ("masculine", "manly")),
    "masculine": (("in a masculine way", "with a broad, masculine posture"),
                  ("masculine", "manly")),
    "feminine": (("in a feminine way", "gracefully, in a feminine manner"),
                 ("feminine", "graceful")),
    "childish": (("like a child", "in a childish, playful way"), ("childish", "playful")),
    "old": (("like an old person", "slowly and stiffly, like an elderly person"),
            ("old", "elderly")),
    "elderly": (("like an elderly person", "slowly and stiffly, like an old person"),
                ("elderly", "old")),
    "tired": (("tiredly", "wearily", "in a tired way"), ("tired", "weary")),
    "exhausted": (("in an exhausted way", "wearily, as if worn out"), ("exhausted", "worn out")),
    "active": (("energetically", "actively, full of energy", "with lively movements"),
               ("energetic", "lively")),
    "youthful": (("in a youthful, lively way", "with youthful energy", "sprightly"),
                 ("youthful", "young")),
    "musical": (("rhythmically, like in a musical", "theatrically, as in a musical"),
                ("theatrical",)),
    "giant": (("heavily, like a lumbering giant", "with heavy, lumbering steps like a giant"),
              ("giant", "lumbering")),
    "chimpira": (("with a swaggering street thug attitude", "like a swaggering punk"),
                 ("swaggering", "thuggish")),
}

_SUBJECTS = ("a person", "someone", "a man", "the person", "a human")

_LR = {"left": "right", "right": "left", "Left": "Right", "Right": "Left"}

# HDM05 label pairs under mirroring (the mirrored labels do not exist in the source).
_HDM05_MIRROR = {
    "depositFloorR": "depositFloorL",
    "grabHighR": "grabHighL",
    "kickLFront1Reps": "kickRFront1Reps",
    "elbowToKnee1RepsLelbowStart": "elbowToKnee1RepsRelbowStart",
    "jogLeftCircle4StepsRstart": "jogRightCircle4StepsLstart",
    "sneak2StepsLStart": "sneak2StepsRStart",
}
_HDM05_MIRROR.update({v: k for k, v in list(_HDM05_MIRROR.items())})


def bandai_style_name(style: str) -> str:
    """Normalise Bandai style spellings (``children`` in the README is ``childish`` in files)."""
    return {"children": "childish"}.get(style, style)


@dataclass(frozen=True)
class ClipLabels:
    """Labels of one clip: ``action`` (Bandai content, HDM05 class, CMU action from
    :func:`cmu_action`, or ``idle``) and ``style`` (Bandai only; None otherwise), plus the ``source``
    corpus (``bandai1``, ``bandai2``, ``hdm05``, ``cmu``, ``reactidle``)."""

    source: str
    action: str
    style: str | None

    def to_dict(self) -> dict[str, str | None]:
        return {"source": self.source, "action": self.action, "style": self.style}


def mirror_label(action: str) -> str:
    """The action label of the left-right mirrored motion (e.g. wave-left-hand -> wave-right-hand)."""
    if action in _HDM05_MIRROR:
        return _HDM05_MIRROR[action]
    if "left" in action or "right" in action:
        return re.sub(r"left|right", lambda m: _LR[m.group(0)], action)
    return action


def mirror_text(text: str) -> str:
    """Swap the words left/right in a caption (HumanML3D mirroring, docs/design.md §2.2)."""
    return re.sub(r"\b(left|right|Left|Right)\b", lambda m: _LR[m.group(0)], text)


def _phrases(labels: ClipLabels) -> tuple[str, ...]:
    table = {"hdm05": HDM05_PHRASES, "cmu": CMU_PHRASES, "reactidle": IDLE_PHRASES}.get(labels.source,
                                                                                       CONTENT_PHRASES)
    if labels.action not in table:
        raise KeyError(f"no wording for action label {labels.action!r} ({labels.source})")
    return table[labels.action]


def _rng_index(key: str, salt: int, n: int) -> int:
    digest = hashlib.sha256(f"{key}|{salt}".encode()).digest()
    return int.from_bytes(digest[:8], "little") % n


def make_captions(labels: ClipLabels, key: str, n: int = 3) -> list[str]:
    """Write ``n`` (>= 3) distinct paraphrases for a clip, deterministically from ``key``.

    Captions combine a subject, one of the action's verb phrases and (for a non-normal Bandai style)
    the style as an adverbial, a prefixed adjective or a trailing tag, so that every caption names
    both labels. Returns lower-case sentences ending with a full stop.

    Raises:
        KeyError: for a label without wording.
    """
    phrases = _phrases(labels)
    adverbs, adjectives = STYLE_WORDS.get(labels.style or "normal", ((), ()))
    if labels.style and labels.style not in STYLE_WORDS:
        raise KeyError(f"no wording for style label {labels.style!r}")
    out: list[str] = []
    salt = 0
    while len(out) < n and salt < 200:
        # rotate through the action's phrases so that paraphrases differ in wording, not only subject
        phrase = phrases[(_rng_index(key, 0, len(phrases)) + len(out)) % len(phrases)]
        subject = _SUBJECTS[_rng_index(key, salt + 1000, len(_SUBJECTS))]
        if adverbs:
            form = (len(out) + _rng_index(key, salt + 2000, 3)) % 3
            if form == 0:
                text = f"{subject} {phrase} {adverbs[_rng_index(key, salt + 3000, len(adverbs))]}"
            elif form == 1:
                adj = adjectives[_rng_index(key, salt + 4000, len(adjectives))]
                article = "an" if adj[0] in "aeiou" else "a"
                text = f"{article} {adj} person {phrase}"
            else:
                tag = adjectives[_rng_index(key, salt + 5000, len(adjectives))]
                text = f"{subject} {phrase}, {tag}"
        else:
            text = f"{subject} {phrase}"
        text = text + "."
        if text not in out:
            out.append(text)
        salt += 1
    if len(out) < n:  # pragma: no cover - the tables give far more than n combinations
        raise RuntimeError(f"could not write {n} distinct captions for {labels}")
    return out


# ----------------------------------------------------------------------------------------------
# Closed-vocabulary POS tags (the 15 categories of the T2M evaluator use the spaCy coarse tags).
# ----------------------------------------------------------------------------------------------
_LEXICON: dict[str, str] = {}


def _add(pos: str, words: str) -> None:
    for w in words.split():
        _LEXICON[w] = pos


_add("DET", "a an the each")
_add("PRON", "someone something their")
_add("ADP", "with without to from by on in like as of around above for into off at")
_add("CCONJ", "and")
_add("SCONJ", "if while")
_add("PART", "to")
_add("NUM", "two once four one")
_add("ADV", "forward straight ahead backwards sideways up down high then back happily cheerfully "
            "sadly angrily furiously proudly timidly hesitantly gracefully tiredly wearily "
            "energetically actively rhythmically theatrically heavily slowly stiffly first "
            "out quietly carefully flat sprightly away together diagonally still idle over "
            "across forth")
_add("ADJ", "few steady fast full small big polite outstretched sweeping long short left right "
            "both single sad downcast happy angry aggressive proud masculine broad manly feminine "
            "childish playful old elderly tired weary exhausted worn energetic lively youthful "
            "young theatrical musical giant lumbering heavy swaggering thuggish gloomy furious "
            "timid insecure shy cheerful graceful deep opposite backward two footed far "
            "street drooping puffed uneven bumpy high classical indian expressive quick "
            "martial little karate")
_add("NOUN", "person man human steps step speed sprint waist hand hands arm arms goodbye wave way "
             "gesture call response mouth fists kick leg sword air dance music routine curve head "
             "mood chest manner posture confidence child thug attitude punk floor ground object "
             "elbow knee exercise shelf foot feet circle body basketball ball shoulders "
             "pace series punches movements energy bow front hop knees squat terrain playground "
             "frame climbing ladder toes tiptoe shower thrusts swordplay salsa ballet leaps turns spins "
             "jumps dance routine place weight music strikes blocks arts kicks stance form "
             "moves back")
_add("VERB", "walks takes runs jogs dashes breaks sprints steps moves bows makes waves raises "
             "says gestures show guides points answers responds calls shouts swings slash "
             "slashes cuts dances performs does turns kicks throws punches lifts bends puts "
             "places crouches set touches brings reaches grabs stretches grab hops jumps lies "
             "gets lowers lie rotates circles sneaks tiptoes creeps squats stands rises shoots "
             "starting worn cupped lumbering raised raising say turning drifting climbs fences "
             "washes rubs picks scoops dribbles bounces practices leaps lands shifts shifting "
             "waits moving walking stretches reach washing")


def _guess_pos(word: str, previous: str | None) -> str:
    """Coarse POS of a word outside the lexicon (human-written captions): suffix rules, with a
    word ending in ``s`` after a noun or pronoun read as a third-person verb."""
    if word.endswith("ly") and len(word) > 4:
        return "ADV"
    if word.endswith(("ing", "ed")) and len(word) > 4:
        return "VERB"
    if word.endswith("s") and not word.endswith("ss") and previous in ("NOUN", "PRON"):
        return "VERB"
    return "NOUN"


def pos_tag(text: str, strict: bool = True) -> list[tuple[str, str]]:
    """Tokens and coarse POS tags of a caption: ``[(word, POS), ...]`` (punctuation dropped).

    Template captions (``strict=True``) use only the lexicon's words. Human-written captions
    (KIT-ML, HumanML3D; ``strict=False``) tag words outside it with :func:`_guess_pos`.

    Raises:
        KeyError: with ``strict``, for a word outside the embedded dataset's vocabulary (a bug in
            the tables).
    """
    words = re.findall(r"[a-z]+", text.lower())
    missing = [w for w in words if w not in _LEXICON]
    if missing and strict:
        raise KeyError(f"words without a POS tag: {sorted(set(missing))}")
    out: list[tuple[str, str]] = []
    for w in words:
        out.append((w, _LEXICON.get(w) or _guess_pos(w, out[-1][1] if out else None)))
    return out
