"""The help texts of the commands (``python cli.py COMMAND --help``), kept apart from
``cli.py`` so that the shell reads as flags → one call → output. click dedents them."""

HELP = {
    "cli": """Combine and clean segmentation predictions (RLE CSVs, probability maps, models).

    Exit codes: 0 success, 1 invalid data or a failed strict check, 2 usage errors and
    unreadable or malformed inputs.

    hard, weighted, soft, postprocess, evaluate and tune also run on a Dask cluster:
    --scheduler tcp://HOST:8786 (a running scheduler) or local:N (N workers here),
    with the same output byte for byte; input paths must be visible to the workers (or
    --ship-inputs for CSVs). See docs/cluster.md.
    """,
    "check": """Validate submission CSVs: columns, every image has every class exactly once, every
    RLE valid (row-major, 1-indexed, ascending, inside HEIGHT×WIDTH). Prints a summary;
    several files are checked in turn, each with its own report.

    A file cut at an image boundary is a valid file of fewer images: --expect-images N
    or --images-from FILE (the sample submission, or a list) reports missing and extra
    images as problems.

    Warnings (a line each; the file stays valid): the last line has no line end (a file
    cut inside its last number, 130 → 1, still reads as valid); images that look smaller
    than HEIGHT×WIDTH: their masks hold 10 runs or more and every run ends within the
    first quarter of the pixels (a 512×512 prediction read as 2048×2048 ends within the
    first 1/16); runs that look like those of the other RLE order (column-major read
    as row-major falls apart column by column): of the first 200 non-empty masks of
    non-square images, 10 or more fall into several 8-connected components as read and
    the other order gives at most a third of their components; the warning names the
    --rle-order to pass. Only non-square images tell the orders apart: on a square image
    the two readings are transposes, with the same components. postprocess, tune and
    report give the same warning before they clean or draw.

    --qa FLAGS.csv also flags suspicious masks, one row image_name,class,flag,value
    each: fragments (more than one 8-connected component; value: their number), missing
    (empty where the class is non-empty in >= 95% of the file's images; value: that
    share), area (non-empty, more than 5 scaled MADs from the median of the class's
    non-empty areas; value: the robust z-score). With several files a first column
    source names the file. A per-class summary goes to stderr; flags are findings: they
    do not change the exit code.

    Exit 0 valid, 1 invalid (every problem listed: the first --max-problems and a count),
    2 unreadable; with several files, the worst of them.
    """,
    "hard": """Hard (majority) vote of several submission CSVs, computed on runs.

    A pixel is kept when votes / n > THRESHOLD (default 0.5, strict), or with --min-votes K
    when votes >= K. Inputs are joined on (image, class); output rows follow the first
    input's image order and the class list. A 'postprocess:' section in the settings cleans
    every voted mask (rules as in 'postprocess --help') and prints a per-class summary.
    A file given twice (same resolved path) is an error unless --allow-duplicate.
    """,
    "weighted": """Weighted vote: keep a pixel when Σ wᵢ·mᵢ / Σ wᵢ > THRESHOLD (strict).

    Weights and thresholds may be given per class in the settings file (a 'default' plus
    per-class overrides; a weight of 0 drops a source for that class):

    \b
      sources: {unet: val/unet.csv, hrnet: val/hrnet.csv}
      weights: {default: {unet: 1, hrnet: 1}, Pisiform: {unet: 0}}
      threshold: {default: 0.5, Trapezoid: 0.4}
      postprocess: {default: {keep_largest: 1, fill_holes: true}, finger-5: {keep_largest: 2}}

    --weights and --threshold replace the 'default' entries only; the weights and
    thresholds of classes that differ from the default are printed on stderr.
    --source NAME=PATH re-points a named source (apply tuned settings to test files).
    A file given twice (same resolved path) is an error unless --allow-duplicate.
    """,
    "demo": """Generate a synthetic hand-bone set (2048², 29 classes: ground truth, several models of
    different per-class quality as CSVs and 512² probability maps) in FOLDER, then run the
    main jobs on it: validate each CSV, hard-vote the CSVs, soft-vote the maps (with the
    settings file it writes, soft_setting.yaml, and inline cleaning), and score everything
    against the ground truth.

    --task kaggle generates a set of another task instead: four exclusive classes 1-4 on
    images of mixed non-square sizes, column-major RLE in ImageId,ClassId,EncodedPixels
    with a sizes.csv, the same predictions as PNG label maps (pngs/<model>/); it checks
    each model's CSV, hard-votes them with --exclusive (and the PNG label maps, to the same
    vote), cleans the vote (min size 30, fill holes), prints Dice and IoU, and writes a
    report. See docs/tasks.md.""",
    "evaluate": """Dice of each prediction against the ground truth, computed on runs.

    Dice per (image, class) = (2|A∩B| + 1e-4) / (|A| + |B| + 1e-4) (two empty masks score 1);
    per class the mean over the ground truth's images; overall the mean over classes. The
    table marks the best source per class; -o writes `source,class,dice` rows, the format
    `select --best-from` reads. With --gt-json, the images are those of the first prediction
    and polygons are filled like OpenCV's fillPoly (boundary pixels inside; Pillow rasteriser).
    --expect-images / --images-from check each prediction's image set first (exit 1).
    """,
    "report": """Write a static HTML report (index.html, image pages, PNG charts and overlays) that
    opens from file:// in any browser: leaderboard, Dice per class and source (heatmap),
    per-image Dice spread of the focus source, its worst images, the settings per class;
    each image page has the X-ray with a colour per class and an image browser (layers:
    ground truth, each source, vote count, false positives and negatives of the focus
    source; opacity, class filter, wrist zoom). Dice equals evaluate's. Without --gt: mean
    Dice between sources per class, mask areas, and the images where they disagree most.
    --quality adds quality.html (linked from index.html): each source's sensitivity per
    class as STAPLE estimates it without ground truth (pooled, region disagreement), as a
    heat map beside the Dice when --gt is given, and each source's QA flags (check --qa)
    with links to the image pages; staple_estimates.csv and qa_flags.csv beside it.
    The folder is written under a temporary name and renamed when complete.

    Other layouts (--columns, --rle-order, --sizes, --instances; see docs/tasks.md): each
    image is drawn at its own size and orientation (an --images picture must have the
    image's size); --exclusive adds the mean IoU to the leaderboard, as evaluate reports it.
    A source whose runs look like those of the other RLE order is warned of on stderr
    before anything is drawn (the rule: check --help).
    """,
    "tune": """Choose per class how to combine the sources, from validation data.

    Sources are validation prediction CSVs: positional INPUTS (named by file stem) and/or
    --source NAME=PATH; the names are what the written settings refer to.

    For every class it scores, exactly and at once, each single source and every weighted
    vote over the --levels grid at every threshold that changes the result, and keeps the
    best only when it beats the plain hard vote by more than --margin. Then, on the chosen
    combination's masks, it tries cleaning (fill holes, keep the 1 or 2 largest components,
    min_size 10…1000, alone or with hole filling) and keeps the best only when it beats no
    cleaning by more than --margin. Writes a settings file for `weighted` (weights,
    thresholds and a postprocess section); apply it to test predictions with only new paths:

    \b
      python cli.py weighted --setting tuned.yaml --source unet=test/unet.csv ... -o test.csv

    --staple also scores, per class, pooled STAPLE over every source (region all, then
    disagreement; staple's defaults) from the same histograms; a class it wins is listed
    under 'staple:' and `weighted` fuses it by running that STAPLE on the files it is
    given (on the validation files: the masks scored here, exactly). --area-gate then
    tries, per class, a min_area gate on the final masks (a mask left with fewer pixels
    is emptied), written as a cleaning rule when it beats them by more than --margin.

    With --maps NAME=DIR (validation probability maps, one folder per model), one pass
    histograms the equal-weight mean probability on ground-truth and background pixels,
    which gives the soft vote's Dice at every threshold 0.05, 0.075, … 0.95 exactly; per
    class the best replaces 0.5 when it beats it by more than --margin. It writes a `soft`
    settings file (--soft-output); apply it with new folders for the same names:

    \b
      python cli.py soft --setting tuned.soft.yaml --source unet=test_maps/unet ... -o test.csv

    Other layouts (--columns, --rle-order, --sizes, --instances; see docs/tasks.md): the
    written settings keep columns and rle_order (give the test set's --sizes when applying
    them); a file whose runs look like those of the other RLE order is warned of on stderr
    (the rule: check --help).
    """,
    "staple": """Estimate each source's quality without ground truth, and fuse by it (STAPLE or SIMPLE).

    STAPLE (Warfield, Zou & Wells 2004), binary, per class: EM from initial sensitivity
    and specificity 0.99; the prior is the sources' mean foreground fraction over the
    pixels the EM runs on (--prior fixed) or re-estimated each iteration (estimate); it
    stops once no estimate changes by 1e-7 (or after 100 iterations). A pixel is kept where
    its posterior >= --confidence. --scope pooled: one estimate per source and class over
    the whole set; image: one per image and class. --region all runs on every pixel
    (Warfield's; the background's weight pulls every specificity to ~1, so the fused mask
    follows the source marking most); disagreement fixes the pixels where every source
    agrees and runs on the rest. Computed exactly on histograms of vote patterns: the
    result equals a dense per-pixel STAPLE, mask for mask. 2 to 16 sources.

    SIMPLE (Langerak et al. 2010, --method simple): majority → each source's Dice against
    it → drop sources below mean − --alpha·std → weights = Dice → again, until nothing
    is dropped.

    \b
    --estimates CSV: source,class,sensitivity,specificity,iterations (SIMPLE:
    source,class,weight,dice,kept,iterations), with image_name first for --scope image;
    sources are named by file stem, NAME= or the settings' names. Per class, each
    source's sensitivity (SIMPLE: weight and dropped sources) is printed on stderr.
    Settings (--setting): sources, output, estimates, method, scope, region, prior,
    confidence, init_sensitivity, init_specificity, alpha, max_iter, missing, classes,
    height, width.
    """,
    "select": """Class selection: each class's mask is copied, as written, from one named source.

    \b
      sources: {ens: out/ensemble.csv, wrist: out/wrist_crop.csv, hr: out/hrnet.csv}
      groups: {wrist: [Trapezium, Trapezoid, Capitate, Hamate, Scaphoid, Lunate, Triquetrum, Pisiform]}
      select: {wrist: wrist, Pisiform: hr, default: ens}   # class, group or default -> source
      output: out/selected.csv

    A class named directly wins over its group, a group over 'default'; a class with no
    rule and no default is an error, so is a class in two groups that name different
    sources. A 'postprocess:' section may name groups too, with the same precedence.
    Only sources some class uses are read. Images follow the first source listed
    under 'sources' that is used; every used source must hold the same images and a row
    for each (image, class) it is selected for (it may hold only some classes); else exit
    1 and nothing is written. Image names given as paths are matched on the basename.

    --best-from SCORES.csv picks, per class, the source with the highest Dice among the
    settings' sources (rows for other sources or classes are ignored; a tie goes to the
    source listed first; a source without a score for a class does not compete for it;
    a class no source has a score for keeps the settings' rule, and is an error without
    one). --write-setting writes the rules used (with the sources, after --source) as a
    settings file that 'select --setting' reproduces; without an output it only writes it.
    Source paths are taken relative to the working directory. The rows each source gave
    (and the --best-from choice per class) are printed on stdout.
    """,
    "merge": """Merge CSVs covering different images and/or classes (shards, per-class files).

    Output: images in first-seen order across the PARTS as given, classes in class-list
    order. An (image, class) in several parts: identical masks (compared as runs, so
    differently written but equal RLEs count as identical) give one row, written as in the
    --prefer file; different masks
    are a conflict: the row of the --prefer file (first or last in the order given) is
    taken, and conflicts are counted and reported. Expected rows are all images × all
    classes; a row no part holds is written as an empty mask and reported. With --strict,
    a conflict or a missing row exits 1 and nothing is written. Image names given as paths
    are matched on the basename. RLE strings are copied as written. The completeness and
    overlap report and the rows taken from each file are printed on stdout.
    --expect-images / --images-from check the merged image set (all parts together) and
    exit 1 before writing when it differs.
    """,
    "soft": """Soft vote of models and saved probability maps: keep a pixel where
    Σ wᵢ·pᵢ / Σ wᵢ > threshold (strict; per-class thresholds and weights allowed).

    \b
    Models (model_paths: {input size: [checkpoints]}): each image under image_root
    (*.png, recursive; CSV names are basenames) is read as 3-channel BGR scaled to [0,1]
    (as cv2.imread did), resized to the input size (bilinear, half-pixel centres, no
    antialias: the arithmetic of cv2 INTER_LINEAR), run through the model (TorchScript, or
    a pickled whole module unpickled with root_path on sys.path); the output (a tensor or
    a dict with 'out') is upsampled bilinearly to full size (align_corners=False), then
    sigmoid. tta: [hflip] averages the logits of the mirrored image first.
    Maps (prob_maps: folders of <stem>.npy/.npz, shape (C,h,w), any h×w): probabilities
    (float16/32), logits (logits: true; sigmoid after upsampling) or uint8/uint16 with a
    scale; resampled bilinearly like torch interpolate(align_corners=False); with boxes:
    resampled to the box and placed on the canvas (clipped), 0 outside it.
    weights: per source (checkpoint stems, then map folder names or their name:), as a
    list in that order or a mapping, optionally per class ({default: …, <class>: …});
    multiplied by each map's own weight; 0 leaves a source out for that class.
    A missing map is an error unless missing: skip (then the mean is over the sources
    present). Canvas: each image's size from sizes: (--sizes, a CSV or a folder of the
    images) where images differ; images run through models at their own size; else
    height × width (default 2048²). Relative paths are relative to the current folder.
    The output goes to -o, else save_dir/output_name (default
    ./output.csv, as the original tool), whose path is then printed on stdout.
    See soft_voting_setting.yaml (top level), settings/soft_maps_example.yaml.

    Engines (engine: or --engine): 'device' keeps the whole vote on the device with torch
    (upsample, sigmoid, weighted sum / Σ weights, > threshold, run boundaries; class_chunk
    classes at a time, default 8) and overlaps reading and writing in threads; 'cpu' votes
    with numba kernels on the CPU; 'auto' (default) takes 'device' unless the device is the
    CPU. tf32: false forbids TF32 in the models' convolutions on GPUs.

    \b
    Exclusive classes (exclusive: true, or --exclusive): maps and models give C+1 channels,
    channel 0 the background (softmax outputs; logits, and models' outputs, go through a
    softmax over channels after upsampling, not a sigmoid); each pixel takes the channel
    of the largest weighted mean (ties: the lower channel; channel 0: no class); the
    background weighs each source's default weight. No threshold applies (giving one is an
    error). Inline postprocess keeps the classes exclusive (the class listed first keeps a
    pixel two classes claim). --columns and --rle-order lay out the CSV written (column
    order: the runs of the transposed mask).
    """,
    "postprocess": """Clean every mask of a submission, per class, on runs (no dense masks).

    \b
    Steps, always in this order (each optional):
      1. --open R        opening by the disk dy²+dx² <= R²
      2. --close R       closing by the same disk
      3. --min-size N    drop components with fewer than N pixels
      4. --keep-largest K  keep the K largest components (equal areas: the one whose
                         first pixel comes first in raster order)
      5. --fill-holes    fill holes of what is left (--max-hole N: only holes <= N px)
      6. --min-area N    empty the mask when fewer than N pixels are left (a decision
                         on the whole mask: a presence gate)

    Components are 8-connected (--connectivity 4: diagonal contact does not connect).
    A hole is background that cannot reach the image border, with the dual connectivity
    (objects 8 → background 4, as scipy.ndimage.binary_fill_holes(mask); objects 4 →
    background 8). Opening/closing take pixels outside the image as background and do
    not cut intermediate results at the border: opening equals
    scipy.ndimage.binary_opening(mask, disk); closing equals binary_closing on the mask
    padded by R, cropped back (it never removes pixels near the border).

    \b
    Per-class rules (--setting FILE, or a 'postprocess:' section in the settings of
    hard, weighted, soft, select and merge, applied inline; in select's, a key may also
    be one of the file's groups: a class's own entry beats its group's, a group's beats
    'default'):
      default: {keep_largest: 1, fill_holes: true, min_size: 50}
      finger-5: {keep_largest: 2}     # overrides only the keys it names
      Trapezoid: null                 # leave this class alone
    Flags override 'default'; class entries keep the keys they name. The file may also
    be {postprocess: <that mapping>, classes:, height:, width:, workers:, output:}.
    Classes without rules are copied verbatim. Prints per class: masks changed,
    components removed, holes filled, pixels removed and added. Each image is cleaned on
    its own grid (--sizes, --rle-order column: docs/tasks.md); an input whose runs look
    like those of the other RLE order is warned of on stderr first (the rule: check --help).
    """,
}
