// remomask studio: the interactive 3D skeleton viewer (three.js 0.187.0, vendored under vendor/three).
//
// A MotionViewer shows one or more motions side by side: joints (T, 22, 3) in metres, Y up, 20 fps, the
// first frame facing +Z and the person's left on +X (HumanML3D, docs/design.md §2.1). Bones are drawn along
// the skeleton's kinematic chains, coloured by body side exactly as the stick-figure renders are
// (left blue, right vermillion, spine dark grey: the colours come from /api/health), over a ground grid,
// with each motion's root path drawn on the floor. The camera starts where the renders' camera is
// (elevation 20 degrees, azimuth -60: the person's right-front) and orbits / zooms / pans with the mouse.
// Frame ranges can be marked on the scrub bar (setRange): the range an edit regenerated, and the range selected
// in an editor panel.
import * as THREE from "three";
import { OrbitControls } from "./vendor/three/OrbitControls.js";

const UP = new THREE.Vector3(0, 1, 0);
const SPACING = 1.6;          // metres between the start positions of motions shown side by side
const ELEV = 20 * Math.PI / 180;
const AZIM = 30 * Math.PI / 180;  // the renders' -60 deg azimuth: 30 deg from -X towards +Z

function shade(hex, dim) {
  const c = new THREE.Color(hex);
  return dim ? c.lerp(new THREE.Color("#ffffff"), 0.45) : c;
}

/** True when this browser can create a WebGL context. */
export function webglAvailable() {
  try {
    const c = document.createElement("canvas");
    return !!(c.getContext("webgl2") || c.getContext("webgl"));
  } catch (e) {
    return false;
  }
}

export class MotionViewer {
  /**
   * @param {HTMLElement} container  element that receives the canvas and the playback controls
   * @param {object} skeleton  /api/health "skeleton": chains, sides, colours, trajectory_colour, fps
   * @param {object} [options]  {onFirstFrame(timeMs)}
   */
  constructor(container, skeleton, options = {}) {
    this.container = container;
    this.skeleton = skeleton;
    this.fps = skeleton.fps || 20;
    this.onFirstFrame = options.onFirstFrame || null;
    this.motions = [];           // {joints: Float32Array (T*22*3), frames, offset, group, bones, joints3, path}
    this.time = 0;               // seconds of playback
    this.speed = 1;
    this.playing = true;
    this.drawnFrames = 0;
    this.last = null;
    this.shownFrame = -1;        // the motion frame drawn last
    this.dirty = true;           // something besides the frame changed (motions, size, visibility)
    this._buildDom();
    this._buildScene();
    this._loop = this._loop.bind(this);
    this._raf = requestAnimationFrame(this._loop);
  }

  _buildDom() {
    const c = this.container;
    c.classList.add("viewer");
    this.stage = document.createElement("div");
    this.stage.className = "viewer-stage";
    c.appendChild(this.stage);
    const bar = document.createElement("div");
    bar.className = "viewer-controls";
    this.playButton = document.createElement("button");
    this.playButton.type = "button";
    this.playButton.className = "play";
    this.playButton.textContent = "Pause";
    this.playButton.title = "Play / pause (space when the viewer has focus)";
    this.playButton.addEventListener("click", () => this.setPlaying(!this.playing));
    this.scrub = document.createElement("input");
    this.scrub.type = "range";
    this.scrub.className = "scrub";
    this.scrub.min = "0";
    this.scrub.max = "0";
    this.scrub.step = "1";
    this.scrub.value = "0";
    this.scrub.setAttribute("aria-label", "frame");
    this.scrub.addEventListener("input", () => {
      this.setPlaying(false);
      this.time = Number(this.scrub.value) / this.fps;
    });
    // the scrub bar sits over two range marks: "edited" (what an edit regenerated) and "selection" (an editor's)
    this.scrubWrap = document.createElement("div");
    this.scrubWrap.className = "scrub-wrap";
    this.marks = {};
    for (const kind of ["edited", "selection"]) {
      const mark = document.createElement("div");
      mark.className = `scrub-range ${kind}`;
      mark.hidden = true;
      this.marks[kind] = mark;
      this.scrubWrap.appendChild(mark);
    }
    this.scrubWrap.appendChild(this.scrub);
    this.frameLabel = document.createElement("span");
    this.frameLabel.className = "frame-label";
    this.speedSelect = document.createElement("select");
    this.speedSelect.className = "speed";
    this.speedSelect.setAttribute("aria-label", "speed");
    for (const s of [0.25, 0.5, 1, 1.5, 2]) {
      const o = document.createElement("option");
      o.value = String(s);
      o.textContent = `${s}x`;
      if (s === 1) o.selected = true;
      this.speedSelect.appendChild(o);
    }
    this.speedSelect.addEventListener("change", () => { this.speed = Number(this.speedSelect.value); });
    this.resetButton = document.createElement("button");
    this.resetButton.type = "button";
    this.resetButton.textContent = "Reset view";
    this.resetButton.addEventListener("click", () => this.fit());
    bar.append(this.playButton, this.scrubWrap, this.frameLabel, this.speedSelect, this.resetButton);
    c.appendChild(bar);
    this.legend = document.createElement("div");
    this.legend.className = "viewer-legend";
    c.appendChild(this.legend);
  }

  _buildScene() {
    const w = this.stage.clientWidth || 480, h = this.stage.clientHeight || 360;
    // preserveDrawingBuffer keeps the last frame readable (screenshots, tests)
    this.renderer = new THREE.WebGLRenderer({ antialias: true, preserveDrawingBuffer: true });
    this.renderer.setPixelRatio(Math.min(window.devicePixelRatio || 1, 2));
    this.renderer.setSize(w, h);
    this.canvas = this.renderer.domElement;
    this.canvas.tabIndex = 0;
    this.canvas.addEventListener("keydown", (e) => {
      if (e.code === "Space") { e.preventDefault(); this.setPlaying(!this.playing); }
    });
    this.stage.appendChild(this.canvas);
    this.scene = new THREE.Scene();
    this.scene.background = new THREE.Color("#f6f6f4");
    this.scene.add(new THREE.HemisphereLight(0xffffff, 0x8a8a80, 2.2));
    const sun = new THREE.DirectionalLight(0xffffff, 1.6);
    sun.position.set(-3, 6, 4);
    this.scene.add(sun);
    this.camera = new THREE.PerspectiveCamera(40, w / h, 0.05, 200);
    this.controls = new OrbitControls(this.camera, this.canvas);
    this.controls.enableDamping = true;
    this.controls.dampingFactor = 0.15;
    this.grid = null;
    this.boneGeometry = new THREE.CylinderGeometry(1, 1, 1, 10);
    this.jointGeometry = new THREE.SphereGeometry(1, 12, 8);
    this.resizeObserver = new ResizeObserver(() => this._resize());
    this.resizeObserver.observe(this.stage);
    // draw only while the canvas is on screen (hidden tabs, scrolled away): a page of many viewers stays light
    this.visible = true;
    this.visibilityObserver = new IntersectionObserver((entries) => {
      for (const e of entries) this.visible = e.isIntersecting;
      this.dirty = true;
    });
    this.visibilityObserver.observe(this.stage);
  }

  _resize() {
    const w = this.stage.clientWidth, h = this.stage.clientHeight;
    if (!w || !h) return;
    this.renderer.setSize(w, h);
    this.camera.aspect = w / h;
    this.camera.updateProjectionMatrix();
    this.dirty = true;
  }

  /**
   * Show motions side by side (the first at its own place, the others to its +X side).
   * @param {Array<{joints: number[][][], label: string, dim?: boolean}>} items
   */
  setMotions(items) {
    for (const m of this.motions) this._removeMotion(m);
    const base = items.length ? items[0].joints[0][0] : [0, 0, 0];   // root of motion 0's first frame
    this.motions = items.map((item, k) => this._addMotion(item, k, base));
    const frames = Math.max(1, ...this.motions.map((m) => m.frames));
    this.scrub.max = String(frames - 1);
    this.legend.replaceChildren(...this.motions.map((m) => {
      const s = document.createElement("span");
      s.className = m.dim ? "legend-item dim" : "legend-item";
      s.textContent = m.label;
      return s;
    }));
    this.fit();
  }

  _addMotion(item, k, base) {
    const frames = item.joints.length, J = item.joints[0].length;
    const data = new Float32Array(frames * J * 3);
    let p = 0;
    for (const frame of item.joints) for (const j of frame) { data[p++] = j[0]; data[p++] = j[1]; data[p++] = j[2]; }
    // motion k starts SPACING * k metres to the +X side of motion 0's start, level with it
    const offset = k === 0 ? new THREE.Vector3() : new THREE.Vector3(base[0] + k * SPACING - data[0], 0, base[2] - data[2]);
    const group = new THREE.Group();
    group.position.copy(offset);
    const sk = this.skeleton, bones = [], joints3 = [];
    sk.chains.forEach((chain, c) => {
      const material = new THREE.MeshStandardMaterial({ color: shade(sk.colours[sk.sides[c]], item.dim),
                                                        roughness: 0.6 });
      for (let i = 0; i + 1 < chain.length; i++) {
        const mesh = new THREE.Mesh(this.boneGeometry, material);
        group.add(mesh);
        bones.push({ a: chain[i], b: chain[i + 1], mesh, radius: chain[i] === 0 || chain[i + 1] > 15 ? 0.022 : 0.028 });
      }
    });
    const jointMaterial = new THREE.MeshStandardMaterial({ color: shade("#555555", item.dim), roughness: 0.5 });
    for (let j = 0; j < J; j++) {
      const mesh = new THREE.Mesh(this.jointGeometry, jointMaterial);
      mesh.scale.setScalar(j === 15 ? 0.085 : 0.03);   // joint 15 is the head
      group.add(mesh);
      joints3.push(mesh);
    }
    const path = new Float32Array(frames * 3);
    for (let t = 0; t < frames; t++) {
      path[3 * t] = data[t * J * 3];
      path[3 * t + 1] = 0.003;
      path[3 * t + 2] = data[t * J * 3 + 2];
    }
    const pathGeometry = new THREE.BufferGeometry();
    pathGeometry.setAttribute("position", new THREE.BufferAttribute(path, 3));
    const pathLine = new THREE.Line(pathGeometry, new THREE.LineBasicMaterial({ color: sk.trajectory_colour }));
    group.add(pathLine);
    this.scene.add(group);
    return { data, frames, J, offset, group, bones, joints3, pathLine, label: item.label, dim: !!item.dim };
  }

  _removeMotion(m) {
    this.scene.remove(m.group);
    m.pathLine.geometry.dispose();
    m.group.traverse((o) => { if (o.material && o.material.dispose) o.material.dispose(); });
  }

  /** Frame the camera on everything the motions reach (the renders' view angle). */
  fit() {
    const box = new THREE.Box3();
    const v = new THREE.Vector3();
    for (const m of this.motions) {
      for (let i = 0; i < m.data.length; i += 3) {
        v.set(m.data[i], m.data[i + 1], m.data[i + 2]).add(m.offset);
        box.expandByPoint(v);
      }
    }
    if (box.isEmpty()) box.set(new THREE.Vector3(-1, 0, -1), new THREE.Vector3(1, 1.8, 1));
    const centre = box.getCenter(new THREE.Vector3());
    const size = box.getSize(new THREE.Vector3());
    const radius = Math.max(1.2, 0.5 * Math.hypot(size.x, size.y, size.z));
    const dist = radius / Math.sin((this.camera.fov * Math.PI / 180) / 2) * 0.95;
    const dir = new THREE.Vector3(-Math.cos(ELEV) * Math.cos(AZIM), Math.sin(ELEV), Math.cos(ELEV) * Math.sin(AZIM));
    this.controls.target.copy(centre);
    this.camera.position.copy(centre).addScaledVector(dir, dist);
    this.camera.near = dist / 100;
    this.camera.far = dist * 20;
    this.camera.updateProjectionMatrix();
    this.controls.update();
    if (this.grid) { this.scene.remove(this.grid); this.grid.geometry.dispose(); this.grid.material.dispose(); }
    const extent = Math.ceil(Math.max(4, size.x + 2, size.z + 2));
    this.grid = new THREE.GridHelper(extent, extent * 2, 0x9a9a9a, 0xcfcfcf);
    this.grid.position.set(Math.round(centre.x), 0, Math.round(centre.z));
    this.scene.add(this.grid);
    this.dirty = true;
  }

  /** Frames of the longest motion shown. */
  get frames() {
    return Math.max(1, ...this.motions.map((m) => m.frames));
  }

  /**
   * Mark frames [start, end) on the scrub bar (end exclusive, 20 fps); null start removes the mark.
   * The range is also kept in the container's data-range-start / data-range-end (data-selection-* for
   * kind "selection").
   * @param {number|null} start  first frame
   * @param {number} end  frame after the last one
   * @param {"edited"|"selection"} [kind]
   */
  setRange(start, end, kind = "edited") {
    const mark = this.marks[kind], key = kind === "edited" ? "range" : "selection";
    if (start === null || start === undefined || !(end > start)) {
      mark.hidden = true;
      delete this.container.dataset[`${key}Start`];
      delete this.container.dataset[`${key}End`];
      return;
    }
    const last = Math.max(1, this.frames - 1);
    const a = Math.min(1, Math.max(0, start / last)), b = Math.min(1, Math.max(0, (end - 1) / last));
    // the thumb's centre runs from 7 px to (width - 7 px) (the track's ends)
    mark.style.left = `calc(7px + (100% - 14px) * ${a})`;
    mark.style.width = `calc(max(3px, (100% - 14px) * ${Math.max(0, b - a)}))`;
    mark.title = `${kind === "edited" ? "edited" : "selected"}: frames ${start}-${end} ` +
      `(${(start / this.fps).toFixed(2)}-${(end / this.fps).toFixed(2)} s)`;
    mark.hidden = false;
    this.container.dataset[`${key}Start`] = String(start);
    this.container.dataset[`${key}End`] = String(end);
  }

  /** Pause and show frame ``frame`` (clamped to the motion). */
  seek(frame) {
    const f = Math.min(Math.max(0, Math.round(frame)), this.frames - 1);
    this.setPlaying(false);
    this.time = f / this.fps;
    this.scrub.value = String(f);
  }

  setPlaying(on) {
    this.playing = on;
    this.playButton.textContent = on ? "Pause" : "Play";
    this.container.dataset.playing = on ? "1" : "0";
  }

  /** The frame shown now (of the longest motion). */
  get frame() {
    const frames = Math.max(1, ...this.motions.map((m) => m.frames));
    return Math.floor(this.time * this.fps) % frames;
  }

  _pose(m, t) {
    const f = Math.min(t, m.frames - 1) * m.J * 3, d = m.data;
    for (let j = 0; j < m.J; j++) m.joints3[j].position.set(d[f + 3 * j], d[f + 3 * j + 1], d[f + 3 * j + 2]);
    const a = new THREE.Vector3(), b = new THREE.Vector3(), dir = new THREE.Vector3();
    for (const bone of m.bones) {
      a.copy(m.joints3[bone.a].position);
      b.copy(m.joints3[bone.b].position);
      dir.subVectors(b, a);
      const len = dir.length();
      bone.mesh.position.addVectors(a, b).multiplyScalar(0.5);
      bone.mesh.scale.set(bone.radius, Math.max(len, 1e-4), bone.radius);
      if (len > 1e-6) bone.mesh.quaternion.setFromUnitVectors(UP, dir.divideScalar(len));
    }
  }

  _loop(now) {
    this._raf = requestAnimationFrame(this._loop);
    const dt = this.last === null ? 0 : Math.min(0.1, (now - this.last) / 1000);
    this.last = now;
    if (!this.motions.length) return;
    if (this.playing) this.time += dt * this.speed;
    const frames = Math.max(1, ...this.motions.map((m) => m.frames));
    const f = Math.floor(this.time * this.fps) % frames;
    if (f !== this.labelFrame || frames !== this.labelFrames) {
      if (this.playing) this.scrub.value = String(f);
      this.frameLabel.textContent = `${String(f + 1).padStart(3, " ")} / ${frames}  (${(f / this.fps).toFixed(2)} s)`;
      this.container.dataset.frame = String(f);
      this.labelFrame = f;
      this.labelFrames = frames;
    }
    const moved = this.controls.update();                 // true while the camera moves (or damps)
    // draw only what changes: a new motion frame (20 fps) or a camera move, and only while on screen;
    // the first frame is always drawn
    if (this.drawnFrames > 0 && (!this.visible || (!moved && !this.dirty && f === this.shownFrame))) return;
    for (const m of this.motions) this._pose(m, f % m.frames);
    this.shownFrame = f;
    this.dirty = false;
    this.renderer.render(this.scene, this.camera);
    this.drawnFrames += 1;
    if (this.drawnFrames === 1) {
      this.container.dataset.ready = "1";
      if (this.onFirstFrame) this.onFirstFrame(performance.now());
    }
  }

  /** Stop drawing and free the WebGL context. */
  dispose() {
    cancelAnimationFrame(this._raf);
    this.resizeObserver.disconnect();
    this.visibilityObserver.disconnect();
    for (const m of this.motions) this._removeMotion(m);
    this.controls.dispose();
    this.boneGeometry.dispose();
    this.jointGeometry.dispose();
    this.renderer.dispose();
    this.renderer.forceContextLoss();
    this.container.replaceChildren();
  }
}
