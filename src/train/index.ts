/// <reference types="@webgpu/types" preserve="true" />
/**
 * `lungpath/train` (Node only): run folders, datasets and image decoding (sharp), evaluation with
 * metrics and plots, prediction, checkpoints, synthetic data, heatmaps — what the CLI is built of.
 *
 * @module lungpath/train
 */
export { openRun, type OpenRunOptions, type RunClassifier } from './open_run.ts';
export { RunFolder, type TrainInfo } from './run_folder.ts';
export { readDataset, validateDataset, stratifiedSplit, formatProblems, DatasetError, SPLIT_NAMES, DEFAULT_SPLIT_FRACTIONS, type Dataset, type DatasetImage, type SplitName } from './dataset.ts';
export { groupKFold, type GroupedImage, type GroupFold, type GroupFoldOptions } from './group_folds.ts';
export { decodeImage, inspectImage, isImageFile, ImageError, IMAGE_EXTENSIONS, type DecodeOptions, type DecodedImage, type MismatchPolicy } from './decode.ts';
export { evaluateRun, loadRunNetworks, majorityVote, reportMarkdown, writeReport, type EvaluateOptions, type EvaluationReport } from './evaluate.ts';
export * from './metrics.ts';
export { rocPlot, confusionPlot, trainingCurvesPlot, type CurvePoint } from './plots.ts';
export { predictImages } from './predict.ts';
export { saveCheckpoint, readCheckpoint, listCheckpoints, loadLatestCheckpoint, type CheckpointState } from './checkpoint.ts';
export { generateSynthDataset, renderSynthImage, SYNTH_CLASSES, type SynthOptions } from './synth.ts';
export { renderHeatmap } from './heatmap.ts';
